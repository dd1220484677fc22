// Polling with a deadline: every wait in the suite is bounded.
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const waitFor = async (predicate, { timeout = 15_000, interval = 50, message = "condition" } = {}) => {
  const deadline = Date.now() + timeout;
  let lastError;
  while (true) {
    try {
      const value = await predicate();
      if (value) {
        return value;
      }
    } catch (error) {
      if (error?.fatal) {
        throw error;
      }
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? `; last error: ${lastError.stack ?? lastError}` : "";
      const what = typeof message === "function" ? message() : message;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await sleep(interval);
  }
};
