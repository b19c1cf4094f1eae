// Preloaded into the Burndown server by bench/events.mjs (`node --import ./bench/mem-probe.mjs`),
// so the memory soak can tell the JS heap from native memory (SQLite's page cache, buffers)
// without any change under src/. Every second it writes process.memoryUsage() to
// $BENCH_MEM_FILE (one JSON object, replaced each time). Does nothing without that variable.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_MEM_FILE;
if (file) {
  const write = () => {
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }));
      renameSync(`${file}.tmp`, file);
    } catch {}
  };
  write();
  setInterval(write, 1000).unref();
}
