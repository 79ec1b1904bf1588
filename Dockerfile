# The operator image. Node 24 runs the TypeScript sources directly (type stripping), so there is no
# build step and the stack traces point at the real files.
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY src ./src
USER node
ENTRYPOINT ["node", "src/main.ts"]
