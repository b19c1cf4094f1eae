/**
 * A copy of `base` with `extra`'s properties added (or replacing base's): `{ ...base, ...extra }`
 * without the cost that literal has on the Node versions this project supports. In V8 11 (Node 20),
 * an object literal that adds a property after a spread takes the runtime's slow path: about 1 µs
 * per object instead of 0.1, and each object gets a map of its own, so every later read of one of
 * its properties misses the inline caches. `Object.assign` onto a fresh object builds the same own
 * properties on shared maps (bench/README.md, "A property added after a spread").
 *
 * For objects this code built, never for parsed input: an own `__proto__` key in `base` would set
 * the copy's prototype instead of becoming a property.
 */
export function extend<B extends object, E extends object>(base: B, extra: E): Omit<B, keyof E> & E {
  return Object.assign({}, base, extra);
}
