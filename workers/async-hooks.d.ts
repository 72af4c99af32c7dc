// workerd implements `node:async_hooks` (nodejs_compat), but the Worker's type program does not
// load @types/node (its globals clash with the Workers runtime types): declare the one class
// workers/log.ts uses, with the signatures of Node's own.
declare module "node:async_hooks" {
  /** Context that follows async work started inside `run` (https://nodejs.org/api/async_context.html). */
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, callback: () => R): R;
  }
}
