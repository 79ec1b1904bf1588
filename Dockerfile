# The operator's image: the operator, the fetch agent and the router, one image for all three.
# Each is one ES module bundled from the TypeScript sources by scripts/build.ts (esbuild): run from
# src/ through Node's type stripping, the operator held 37 MB more at idle and peaked 45 MB higher in
# the scale benchmark (README). The image holds the bundles, their source maps (read only under
# NODE_OPTIONS=--enable-source-maps) and the bundled packages' licences; no node_modules. The tag is
# pinned to the Node of package.json's `node` devDependency, the one the tests run on
# (test/unit/image.test.ts checks both agree).

# The build, from the lock file, dev dependencies included (esbuild). Install scripts are off:
# esbuild's only checks the binary that npm installs anyway as an optional dependency, and none may
# run as root at build time unreviewed.
FROM node:24.21.0-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY scripts/build.ts ./scripts/
COPY src ./src
RUN node scripts/build.ts

FROM node:24.21.0-slim
WORKDIR /app
ENV NODE_ENV=production
# Everything is owned by root and only readable by the runtime user: nothing writes into /app at run
# time, so the root filesystem can be mounted read-only (the agent writes only into its --root
# volume, and its termination message into the kubelet's /dev/termination-log).
COPY --from=build /app/dist ./dist
# Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd: it refuses a named
# user under runAsNonRoot. 1000 is the base image's `node` user (a home for HOME, an entry for
# os.userInfo()); the router Deployment the operator builds and deploy/ and the chart set the same.
USER 1000:1000
# Signals: node runs as PID 1 with no init. The kernel gives PID 1 no default signal actions, so a
# signal without a handler is ignored; each long-running entry point installs its own SIGTERM and
# SIGINT handlers (src/main.ts, src/agent/main.ts, src/router/main.ts) and shuts down gracefully.
# tini would not help where it matters: Kubernetes' `command`, which the operator sets for the agent
# and router containers, replaces ENTRYPOINT, so an init placed here would run for the operator only.
# None of them spawns child processes, so there are no zombies to reap.
#
# Entry points (the operator's builders use these commands, src/backends/*/desired.ts):
#   operator:    node [node flags] dist/operator.mjs [flags]  (the default; Kubernetes `args` are its flags)
#   fetch agent: node dist/agent.mjs [flags]
#   router:      node dist/router.mjs --namespace=NS --deployment=NAME
#
# The operator's Node flags keep its memory near what it holds: V8's defaults let a busy heap grow
# to four times its live set, and reserve up to 3 x 16 MB for the young generation. With them the
# scale benchmark's peak RSS fell from 547 to 237 MB for about 30 % more CPU (README).
# --heap-growing-percent is a V8 flag, not a Node one: a Node upgrade that drops it fails the image
# test that starts the operator with this ENTRYPOINT.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=25", "dist/operator.mjs"]
