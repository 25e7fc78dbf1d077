-- Argo CD health check of a WorkOSConvexAuth (argocd-cm key
-- resource.customizations.health.workos-convex.io_WorkOSConvexAuth). It reads the status as
-- kstatus does (Flux, kpt, Config Sync), so both say the same thing: Stalled=True is Degraded,
-- Reconciling=True and an unobserved generation are Progressing, then Ready decides.
-- Lua 5.1 as gopher-lua runs it. Tests: tests/argocd/run_health.lua on tests/fixtures/health.
local hs = {}

-- A condition's message, or its reason when the message is empty.
local function says(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = hs.message .. "; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return hs
end

-- Until the operator has written a status for this spec, nothing else in it is current. (kstatus
-- skips this check while observedGeneration is absent and calls such an object Current; Argo
-- would then report a resource nobody has looked at as Healthy.)
local status = obj.status or {}
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to observe generation " .. generation
  return hs
end

local conditions = status.conditions or {}
-- The first of the two in list order wins, as in kstatus (the operator never sets both).
for _, condition in ipairs(conditions) do
  if condition.type == "Stalled" and condition.status == "True" then
    hs.status = "Degraded"
    hs.message = says(condition)
    return hs
  end
  if condition.type == "Reconciling" and condition.status == "True" then
    hs.status = "Progressing"
    hs.message = says(condition)
    return hs
  end
end

-- Ready=False without Stalled is a failure the operator retries by itself (an upstream down, pods
-- not yet available): "not healthy yet, may be soon" is Argo's Progressing, as kstatus's
-- InProgress. What needs someone's edit carries Stalled and is Degraded above.
for _, condition in ipairs(conditions) do
  if condition.type == "Ready" then
    hs.status = condition.status == "True" and "Healthy" or "Progressing"
    hs.message = says(condition)
    return hs
  end
end

hs.status = "Progressing"
hs.message = "waiting for the Ready condition"
return hs
