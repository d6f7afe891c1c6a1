import { openDatabase, type Db } from './database.js';
import { DestinationRepository } from './destinations.js';
import { JobRepository } from './jobs.js';
import { SnapshotRepository } from './snapshots.js';
import { TaskRepository } from './tasks.js';
import { ActivityRepository } from './activity.js';
import { SessionRepository } from './sessions.js';
import { ApiTokenRepository } from './api-tokens.js';
import { ScheduleRepository } from './schedules.js';
import { AccountPreferenceRepository } from './account-preferences.js';
import { AccountRepository } from './accounts.js';
import { BinlogRepository } from './binlogs.js';

export interface Store {
  db: Db;
  destinations: DestinationRepository;
  jobs: JobRepository;
  snapshots: SnapshotRepository;
  tasks: TaskRepository;
  activity: ActivityRepository;
  sessions: SessionRepository;
  apiTokens: ApiTokenRepository;
  schedules: ScheduleRepository;
  accountPreferences: AccountPreferenceRepository;
  /** Account identities (store/accounts.ts). */
  accounts: AccountRepository;
  /** Binary logs shipped and the log position of each dump (point in time). */
  binlogs: BinlogRepository;
  close(): void;
}

export async function openStore(dataDir: string): Promise<Store> {
  const db = await openDatabase(dataDir);
  return {
    db,
    destinations: new DestinationRepository(db),
    jobs: new JobRepository(db),
    snapshots: new SnapshotRepository(db),
    tasks: new TaskRepository(db),
    activity: new ActivityRepository(db),
    sessions: new SessionRepository(db),
    apiTokens: new ApiTokenRepository(db),
    schedules: new ScheduleRepository(db),
    accountPreferences: new AccountPreferenceRepository(db),
    accounts: new AccountRepository(db),
    binlogs: new BinlogRepository(db),
    close: () => db.close(),
  };
}
