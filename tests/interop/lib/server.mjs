// Extra taskboard processes for scenarios that restart a server or need a
// database of their own, plus `taskboard seed`, `taskboard log compact` and a
// TCP proxy that can cut the network.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { sql } from "./db.mjs";
import { env } from "./env.mjs";
import { waitFor } from "./wait.mjs";

const run = promisify(execFile);

/** A TCP port nobody listens on right now. */
export const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

const serverEnv = (databaseUrl, port) => {
  const vars = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    BIND: "127.0.0.1",
    RUST_LOG: process.env.RUST_LOG ?? "info",
    NO_COLOR: "1",
    WORKERS: "2",
    // The scenarios create their own workspaces.
    TASKBOARD_NO_DEMO: "1",
  };
  // In-process fan-out only, development tokens.
  delete vars.REDIS_URL;
  delete vars.TASKBOARD_TOKENS;
  delete vars.PORT;
  if (port) {
    vars.PORT = String(port);
  }
  return vars;
};

/** `taskboard seed`: returns the workspace id. */
export const seedWorkspace = async ({
  tasks = 5,
  members,
  labels,
  name,
  workspaceId,
  databaseUrl = env.databaseUrl,
} = {}) => {
  if (!members?.length) {
    throw new Error("seedWorkspace needs at least one member (taskboard seed defaults to alice)");
  }
  const args = ["seed", "--tasks", String(tasks)];
  for (const m of members) {
    args.push("--member", m);
  }
  if (labels !== undefined) {
    args.push("--labels", String(labels));
  }
  if (name) {
    args.push("--name", name);
  }
  if (workspaceId) {
    args.push("--workspace-id", workspaceId);
  }
  const { stdout } = await run(env.bin, args, {
    timeout: 60_000,
    env: serverEnv(databaseUrl, 0),
  });
  const id = stdout.trim().split("\n").at(-1);
  if (!/^[0-9a-f-]{36}$/.test(id)) {
    throw new Error(`unexpected seed output: ${stdout}`);
  }
  return id;
};

/**
 * `taskboard log compact --json`: folds the log up to `below` (default: its
 * head) and removes what is below `horizon` (default: the current one).
 * Returns the report, sync ids as strings.
 */
export const compactLog = async ({ below, horizon, databaseUrl = env.databaseUrl } = {}) => {
  const args = ["log", "compact", "--json"];
  if (below !== undefined) {
    args.push("--below", String(below));
  }
  if (horizon !== undefined) {
    args.push("--horizon", String(horizon));
  }
  const { stdout } = await run(env.bin, args, { timeout: 60_000, env: serverEnv(databaseUrl, 0) });
  return JSON.parse(stdout);
};

/** A unique user id for one test. */
export const uniqueUser = (prefix) => `${prefix}_${randomBytes(4).toString("hex")}`;

/**
 * A taskboard process of the test's own. `restart()` starts it again on the
 * same port and database; `kill(signal)` stops it (SIGKILL: a crash).
 */
export class ServerProcess {
  constructor({ databaseUrl, port, name }) {
    this.databaseUrl = databaseUrl;
    this.port = port;
    this.name = name;
    this.logFile = path.join(env.logDir, `${name}.log`);
    this.log = createWriteStream(this.logFile, { flags: "a" });
    this.child = null;
  }

  static async start({ databaseUrl = env.databaseUrl, name = "extra" } = {}) {
    const server = new ServerProcess({ databaseUrl, port: await freePort(), name });
    await server.restart();
    return server;
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async restart() {
    if (this.child) {
      throw new Error("server already running");
    }
    this.log.write(`\n==== start ${new Date().toISOString()}\n`);
    const child = spawn(env.bin, [], {
      env: serverEnv(this.databaseUrl, this.port),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    // run.sh stops whatever is left of it if this process dies first.
    writeFileSync(path.join(env.logDir, `${this.name}.pid`), String(child.pid));
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    child.on("exit", () => {
      if (this.child === child) {
        this.child = null;
      }
    });
    await waitFor(
      async () => {
        if (!this.child) {
          throw Object.assign(new Error(`server ${this.name} exited during start; log:\n${this.tail()}`), {
            fatal: true,
          });
        }
        try {
          const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(1000) });
          return res.ok;
        } catch {
          return false;
        }
      },
      { timeout: 30_000, interval: 100, message: `server ${this.name} did not become healthy` }
    );
  }

  /** Stops the process and waits until it is gone (SIGKILL after 10 s). */
  async kill(signal = "SIGKILL") {
    const child = this.child;
    if (!child) {
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
    this.log.write(`==== stopped (${signal}) ${new Date().toISOString()}\n`);
  }

  tail(lines = 60) {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  async close() {
    await this.kill("SIGTERM");
    await new Promise((resolve) => this.log.end(resolve));
  }
}

/** A fresh database (dropped by `drop()`; run.sh drops leftovers too). */
export const createDatabase = async (suffix) => {
  const main = new URL(env.databaseUrl);
  const name = `${main.pathname.slice(1)}_${suffix}`;
  const admin = new URL(env.databaseUrl);
  admin.pathname = "/postgres";
  await sql(`CREATE DATABASE "${name}"`, { databaseUrl: admin.href });
  const url = new URL(env.databaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: () =>
      sql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`, { databaseUrl: admin.href }).catch(() => {}),
  };
};

/**
 * A TCP proxy in front of `target` (host:port). `setOnline(false)` drops
 * every open connection and refuses new ones: the client is offline.
 */
export class NetworkProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.online = true;
    this.sockets = new Set();
    this.server = net.createServer((socket) => this.accept(socket));
  }

  static async start(targetPort) {
    const proxy = new NetworkProxy(targetPort);
    await new Promise((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    proxy.port = proxy.server.address().port;
    return proxy;
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  accept(socket) {
    if (!this.online) {
      socket.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    const pair = [socket, upstream];
    for (const s of pair) {
      this.sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        this.sockets.delete(s);
        for (const other of pair) {
          other.destroy();
        }
      });
    }
    socket.pipe(upstream);
    upstream.pipe(socket);
  }

  setOnline(online) {
    this.online = online;
    if (!online) {
      for (const s of this.sockets) {
        s.destroy();
      }
    }
  }

  close() {
    this.setOnline(false);
    return new Promise((resolve) => this.server.close(resolve));
  }
}
