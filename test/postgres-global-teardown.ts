export { teardown as default } from './helpers/postgres-global';
