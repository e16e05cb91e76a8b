// tufjs_judge.cjs reads a Switchyard TUF repository with tuf-js, a second TUF
// implementation, as the independent judge of what omaha-server/tufhost serves.
// Run by TestTUFJSJudge:
//   node tufjs_judge.cjs NPM_PREFIX METADATA_URL TARGETS_URL CACHE_DIR TARGET_NAME
// CACHE_DIR must hold the trusted root.json. Prints one JSON line:
//   {"length":N,"sha256":"<hex of the downloaded file>","custom":{...}}
'use strict';
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');

async function main() {
  const [prefix, metadataBaseUrl, targetBaseUrl, cacheDir, targetName] = process.argv.slice(2);
  const { Updater } = require(path.join(prefix, 'node_modules', 'tuf-js'));
  const targetDir = path.join(cacheDir, 'targets');
  fs.mkdirSync(targetDir, { recursive: true });
  const updater = new Updater({ metadataBaseUrl, targetBaseUrl, metadataDir: cacheDir, targetDir });
  await updater.refresh();
  const info = await updater.getTargetInfo(targetName);
  if (!info) {
    throw new Error(`target ${targetName} not found`);
  }
  const file = await updater.downloadTarget(info, path.join(targetDir, 'payload'));
  const data = fs.readFileSync(file);
  const sha256 = crypto.createHash('sha256').update(data).digest('hex');
  process.stdout.write(JSON.stringify({ length: data.length, sha256, custom: info.custom }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`tuf-js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
