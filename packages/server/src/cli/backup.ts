import type { Command } from 'commander';
import { formatBytes } from '@builder/protocol';
import { BackupError, takeBackup } from '../backup/backup.ts';
import { BadBackupError } from '../backup/manifest.ts';
import { NotEmptyError, restoreBackup } from '../backup/restore.ts';
import { addStoreOptions, closeStore, dataDirOption, openStoreFromFlags, type StoreFlags } from './options.ts';

/** Exit codes of `backup` and `restore`, for timers and scripts. */
export const BACKUP_EXIT = { ok: 0, incomplete: 1, usage: 2, refused: 3, damaged: 4 } as const;

const BACKUP_HELP = `
Safe while the server runs. DIR is replaced as a whole by the new backup (built beside it
and renamed into place), so it always holds one complete backup; blobs already in the
previous backup there are not copied again.

Exit codes:
  0  backup complete
  1  backup written, but blobs the database refers to were missing or damaged in the store
     (listed in DIR/manifest.json; see builder-server verify), or it failed
  2  usage error
  3  refused: no builder database in --data-dir, or --to holds something else`;

const RESTORE_HELP = `
Exit codes:
  0  restored: start builder-server on --data-dir
  1  failed (nothing is left in --data-dir)
  2  usage error
  3  refused: --data-dir is not empty
  4  the backup is damaged or not a backup (nothing is left in --data-dir)`;

/** `builder-server backup` and `builder-server restore`. */
export function addBackupCommands(program: Command): void {
  addStoreOptions(
    program
      .command('backup')
      .description('copy the database, consoles and local artifact blobs to DIR (safe while the server runs)')
      .addOption(dataDirOption()),
  )
    .requiredOption('--to <dir>', 'the backup directory (replaced as a whole by each new backup)')
    .option('--copy', 'copy local blobs even where a hard link would do (DIR on the same file system as the store)')
    .option('--json', 'print the manifest as JSON')
    .addHelpText('after', BACKUP_HELP)
    .action(async function (this: Command, o: StoreFlags & { to: string; copy?: boolean; json?: boolean }) {
      let blobs;
      try {
        blobs = openStoreFromFlags(o);
      } catch (err) {
        this.error(`builder-server backup: ${(err as Error).message}`, { exitCode: BACKUP_EXIT.usage });
      }
      try {
        const r = await takeBackup({ dataDir: o.dataDir, to: o.to, blobs, copy: o.copy, now: () => new Date() });
        const m = r.manifest;
        if (o.json) {
          process.stdout.write(`${JSON.stringify(m)}\n`);
        } else {
          const lines = [
            `backup of ${o.dataDir} as of ${m.createdAt} in ${r.dir}`,
            `  database: ${m.database.jobs} jobs, ${m.database.runs} runs, ${formatBytes(m.database.bytes)}`,
            `  consoles: ${m.consoles.files} files, ${formatBytes(m.consoles.bytes)}`,
            m.blobs.store === 's3'
              ? `  artifacts: not copied: the blobs stay in ${m.blobs.location} (back the bucket up on its own, e.g. with versioning or replication)`
              : `  artifacts: ${m.blobs.files} blobs, ${formatBytes(m.blobs.bytes)} ` +
                `(${r.blobsReused} from the previous backup, ${r.blobsLinked} linked, ${r.blobsCopied} copied)`,
          ];
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        if (m.blobs.store === 'local' && m.blobs.missing.length + m.blobs.damaged.length > 0) {
          process.stderr.write(
            `builder-server backup: ${m.blobs.missing.length} blobs missing and ${m.blobs.damaged.length} damaged ` +
              `in ${blobs.description} (listed in ${r.dir}/manifest.json); run builder-server verify\n`,
          );
          process.exitCode = BACKUP_EXIT.incomplete;
        }
      } catch (err) {
        process.stderr.write(`builder-server backup: ${(err as Error).message}\n`);
        process.exitCode = err instanceof BackupError ? BACKUP_EXIT.refused : BACKUP_EXIT.incomplete;
      } finally {
        closeStore(blobs);
      }
    });

  addStoreOptions(
    program
      .command('restore')
      .description('restore a backup into a new or empty data dir, then start builder-server on it')
      .addOption(dataDirOption()),
  )
    .requiredOption('--from <dir>', 'a directory builder-server backup wrote')
    .addHelpText('after', RESTORE_HELP)
    .action(async function (this: Command, o: StoreFlags & { from: string }) {
      let blobs;
      try {
        blobs = openStoreFromFlags(o);
      } catch (err) {
        this.error(`builder-server restore: ${(err as Error).message}`, { exitCode: BACKUP_EXIT.usage });
      }
      try {
        const r = await restoreBackup({ from: o.from, dataDir: o.dataDir, blobs });
        const m = r.manifest;
        process.stdout.write(
          `restored the backup of ${m.createdAt} into ${o.dataDir}: ${m.database.jobs} jobs, ` +
            `${m.database.runs} runs, ${r.consoles} consoles, ${r.blobs} artifact blobs\n`,
        );
        if (m.blobs.store === 's3') {
          process.stdout.write(
            `artifacts: the blobs were not in the backup, they stay in ${m.blobs.location}: ` +
              `start builder-server with --artifacts ${m.blobs.location} (and the same --s3-endpoint)\n`,
          );
        } else if (!blobs.description.startsWith('local ')) {
          process.stdout.write(
            `artifacts: the backup's blobs were local and are not copied to ${blobs.description}: restore without --artifacts\n`,
          );
        }
      } catch (err) {
        process.stderr.write(`builder-server restore: ${(err as Error).message}\n`);
        process.exitCode =
          err instanceof NotEmptyError
            ? BACKUP_EXIT.refused
            : err instanceof BadBackupError
              ? BACKUP_EXIT.damaged
              : BACKUP_EXIT.incomplete;
      } finally {
        closeStore(blobs);
      }
    });
}
