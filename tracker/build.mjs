// Builds flask_analytics/static/analytics/tracker.min.js from tracker.js with terser.
//   node build.mjs           write the minified file and print its sizes
//   node build.mjs --check   exit 1 when the committed file differs from a fresh build
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { minify } from "terser";

const dir = new URL("../flask_analytics/static/analytics/", import.meta.url);
const source = readFileSync(new URL("tracker.js", dir), "utf8");
const target = new URL("tracker.min.js", dir);
const BUDGET = 2000; // bytes, minified + gzipped

const { code } = await minify(source, {
  // ES2019 output (object spread, optional catch binding): no syntax that older evergreen browsers would fail to parse.
  ecma: 2019,
  compress: { passes: 3, unsafe_arrows: true, unsafe_methods: true, pure_getters: true, booleans_as_integers: true },
  mangle: true,
  format: { comments: false },
});
const built = code + "\n";

if (process.argv.includes("--check")) {
  let committed = "";
  try { committed = readFileSync(target, "utf8"); } catch {}
  if (committed !== built) {
    console.error("tracker.min.js is stale: run `npm run build` in tracker/");
    process.exit(1);
  }
} else {
  writeFileSync(target, built);
}
const gz = gzipSync(built, { level: 9 }).length;
console.log(`tracker.min.js: ${built.length} bytes, ${gz} bytes gzipped (budget ${BUDGET})`);
if (gz > BUDGET) process.exit(1);
