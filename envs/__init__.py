"""Environments of synthgap: the chemistry world, the lab twin, Gymnasium and PettingZoo envs.

Importing this package registers the Gymnasium ids under the ``synthgap/`` namespace.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = ("synthgap/Campaign-v0", "synthgap/FurnaceControl-v0")

if "synthgap/Campaign-v0" not in registry:
    register(id="synthgap/Campaign-v0", entry_point="synthgap.envs.campaign:CampaignEnv")
    register(id="synthgap/FurnaceControl-v0", entry_point="synthgap.envs.furnace_control:FurnaceControlEnv")
