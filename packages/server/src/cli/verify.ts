import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { formatVerifyReport, verifyBlobs } from '../artifacts/verify.ts';
import { ArtifactStore } from '../store/artifacts.ts';
import { openDb } from '../store/db.ts';
import { addStoreOptions, closeStore, dataDirOption, openStoreFromFlags, type StoreFlags } from './options.ts';

/** Exit codes of `verify`, for scripts and monitoring. */
export const VERIFY_EXIT = { ok: 0, damaged: 1, usage: 2, noDatabase: 3, unreadable: 4 } as const;

const EXIT_HELP = `
Exit codes:
  0  every blob is intact
  1  damaged blobs were found (and quarantined unless the report says otherwise),
     or blobs that runs refer to are missing from the store
  2  usage error
  3  no builder database in --data-dir
  4  no damage found, but some blobs or the store could not be read`;

/**
 * `builder-server verify`: re-hash every blob, quarantine the damaged ones and name the runs whose
 * artifacts they were. Reads the database only, so it runs next to a live server.
 */
export function addVerifyCommand(program: Command): void {
  addStoreOptions(
    program
      .command('verify')
      .description(
        're-hash every artifact blob; quarantine damaged ones and name their runs (safe while the server runs)',
      )
      .addOption(dataDirOption()),
  )
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXIT_HELP)
    .action(async function (this: Command, o: StoreFlags & { json?: boolean }) {
      let blobs;
      try {
        blobs = openStoreFromFlags(o);
      } catch (err) {
        this.error(`builder-server verify: ${(err as Error).message}`, { exitCode: VERIFY_EXIT.usage });
      }
      // an empty database would only hide a mistyped --data-dir
      if (!existsSync(join(o.dataDir, 'builder.sqlite'))) {
        process.stderr.write(`builder-server: no builder database in ${o.dataDir}\n`);
        process.exitCode = VERIFY_EXIT.noDatabase;
        return;
      }
      const db = openDb(o.dataDir);
      try {
        const report = await verifyBlobs({ blobs, artifacts: new ArtifactStore(db) });
        process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatVerifyReport(report));
        if (report.damaged.length + report.missing.length > 0) process.exitCode = VERIFY_EXIT.damaged;
        else if (report.unreadable.length > 0) process.exitCode = VERIFY_EXIT.unreadable;
      } catch (err) {
        // listing the store failed (a bucket out of reach): nothing could be checked
        process.stderr.write(`builder-server verify: ${blobs.description}: ${(err as Error).message}\n`);
        process.exitCode = VERIFY_EXIT.unreadable;
      } finally {
        db.close();
        closeStore(blobs);
      }
    });
}
