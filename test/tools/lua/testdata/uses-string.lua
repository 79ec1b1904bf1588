-- Fails in Argo CD's Lua: it opens no string library. The harness must fail on it too.
return { status = "Healthy", message = string.format("%d", 1) }
