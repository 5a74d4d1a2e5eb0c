export { SQLITE_SCHEMA_VERSION } from './schema.js';
export { openSqliteStore, SqliteStore } from './store.js';
