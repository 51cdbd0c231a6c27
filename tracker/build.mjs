// Builds the minified trackers in flask_analytics/static/analytics/ from tracker.js with terser:
//   tracker.min.js          automatic pageviews (BUILD "auto")
//   tracker.manual.min.js   pageviews sent by the page with fa.pageview (BUILD "manual")
// Each build fixes BUILD, so the code of the other build and of debug mode (the readable
// tracker.js only) is dropped.
//   node build.mjs           write the minified files and print their sizes
//   node build.mjs --check   exit 1 when a committed file differs from a fresh build
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { minify } from "terser";

const dir = new URL("../flask_analytics/static/analytics/", import.meta.url);
const source = readFileSync(new URL("tracker.js", dir), "utf8");
const BUDGET = 2000; // bytes, minified + gzipped, per build
const BUILDS = { "tracker.min.js": "auto", "tracker.manual.min.js": "manual" };
const check = process.argv.includes("--check");

let failed = false;
for (const [file, build] of Object.entries(BUILDS)) {
  const target = new URL(file, dir);
  const { code } = await minify(source, {
    // ES2019 output (object spread, optional catch binding): no syntax that older evergreen browsers would fail to parse.
    ecma: 2019,
    compress: {
      passes: 3, unsafe_arrows: true, unsafe_methods: true, pure_getters: true, booleans_as_integers: true,
      // `x == null` rather than `null == x`: the same bytes, and gzip finds more repeats.
      lhs_constants: false,
      global_defs: { BUILD: build },
    },
    mangle: true,
    format: { comments: false },
  });
  const built = code + "\n";
  if (check) {
    let committed = "";
    try { committed = readFileSync(target, "utf8"); } catch {}
    if (committed !== built) {
      console.error(`${file} is stale: run \`npm run build\` in tracker/`);
      failed = true;
    }
  } else {
    writeFileSync(target, built);
  }
  const gz = gzipSync(built, { level: 9 }).length;
  console.log(`${file}: ${built.length} bytes, ${gz} bytes gzipped (budget ${BUDGET})`);
  if (gz > BUDGET) failed = true;
}
if (failed) process.exit(1);
