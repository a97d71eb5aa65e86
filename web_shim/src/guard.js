// The shim runs inside someone else's page: every entry point (listeners, timers, promise callbacks, the API)
// goes through this, so that nothing it does throws into the page or writes to its console.
export const guard =
  (f) =>
  (...args) => {
    try {
      return f(...args);
    } catch (e) {}
  };
