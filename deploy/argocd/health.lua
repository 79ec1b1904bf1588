-- Argo CD health of serving.stacked.dev objects (StackedModelGroup, StackedDeployment).
-- Argo CD has no generic condition-based health for custom resources: without this script an
-- application shows Healthy while a model is not served, and sync waves do not wait for it.
-- Follows the operator's Ready condition, for the current generation only.
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
-- Reasons that stay until a user changes something; every other False reason is still in progress.
local needsUser = {
  InvalidSpec = true, MemberInvalid = true, SourceNotFound = true, ModelGroupNotFound = true,
  ModelGroupNotReady = true, RankTooHigh = true, ModelIdMissing = true, ExperimentInvalid = true,
  SourceNotSupported = true, ApplyFailed = true, AdapterFailed = true,
  RuntimeLoraUpdatesDisabled = true, Unschedulable = true,
  CredentialsInvalid = true, NotAuthenticated = true, NotAuthorizedOrNotFound = true, OciRejected = true,
  ModelGroupFailed = true, DeploymentFailed = true, DeploymentNeedsAttention = true,
  ImmutableFieldChanged = true, DriftDetected = true, DeletedInOCI = true, DeploymentInactive = true,
  WorkRequestFailed = true,
}
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    hs.message = c.reason .. ": " .. c.message
    if c.status == "True" then
      hs.status = "Healthy"
    elseif needsUser[c.reason] then
      hs.status = "Degraded"
    end
    return hs
  end
end
return hs
