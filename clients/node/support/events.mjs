// Waiting for client events in the Node tests.

/** The next event of `type` matching `pred`, or a rejection after `ms`. */
export function next(client, type, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms`)), ms);
    client.on(type, (e) => {
      if (pred(e)) {
        clearTimeout(timer);
        resolve(e);
      }
    });
  });
}
