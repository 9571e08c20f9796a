export { setup as default } from './helpers/postgres-global';
