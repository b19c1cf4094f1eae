import { type ComponentChild, render } from 'preact';
import { useState } from 'preact/hooks';
import { api, errorText, forgetKey, storedKey, storeKey } from './api';
import { CustomerPage } from './pages/Customer';
import { CustomersPage } from './pages/Customers';
import { DeliveriesPage } from './pages/Deliveries';
import { OverviewPage } from './pages/Overview';
import { PortalPage } from './pages/Portal';
import { onLinkClick, usePath } from './router';
import './styles.css';

/** Sign-in with an API key: checked with one read, then kept in sessionStorage only. */
function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    storeKey(key.trim());
    try {
      await api().GET('/v1/customers', { params: { query: { limit: '1' } } });
      onSignedIn();
    } catch (e) {
      forgetKey();
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Burndown</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <p id="login-help" class="muted">
          Kept in this browser tab only (session storage); closing the tab signs you out.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const NAV: readonly { href: string; label: string }[] = [
  { href: '/', label: 'Overview' },
  { href: '/customers', label: 'Customers' },
  { href: '/at-risk', label: 'At risk' },
  { href: '/deliveries', label: 'Webhook deliveries' },
];

/** The operator dashboard: navigation and the page of the current path. */
function Dashboard({ onSignOut }: { onSignOut: () => void }) {
  const path = usePath();
  const customer = /^\/customers\/([^/]+)$/.exec(path);
  let page: ComponentChild;
  if (customer) page = <CustomerPage id={decodeURIComponent(customer[1]!)} />;
  else if (path === '/customers') page = <CustomersPage key="all" mode="all" />;
  else if (path === '/at-risk') page = <CustomersPage key="at_risk" mode="at_risk" />;
  else if (path === '/deliveries') page = <DeliveriesPage />;
  else page = <OverviewPage />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <strong class="brand">Burndown</strong>
        <nav aria-label="Main">
          {NAV.map((n) => (
            <a
              key={n.href}
              href={n.href}
              onClick={onLinkClick}
              aria-current={
                path === n.href || (n.href === '/customers' && path.startsWith('/customers/'))
                  ? 'page'
                  : undefined
              }
            >
              {n.label}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            forgetKey();
            onSignOut();
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState(storedKey() !== null);
  // The portal authenticates by its own session cookie, never by the operator's key.
  if (path === '/portal' || path.startsWith('/portal/')) return <PortalPage />;
  if (!signedIn) return <Login onSignedIn={() => setSignedIn(true)} />;
  return <Dashboard onSignOut={() => setSignedIn(false)} />;
}

render(<App />, document.getElementById('app')!);
