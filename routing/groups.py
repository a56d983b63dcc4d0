"""Channel-layer group names, shared by whoever sends and whoever listens."""


def agent_group(agent_id: int) -> str:
    return f"agent.{agent_id}"


SUPERVISORS_GROUP = "supervisors"
