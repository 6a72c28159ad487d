"""A check as a user writes one: a function of the agent's output, instance and seed."""


def even_instances(output: str, instance: int, seed: int) -> bool:
    return output.startswith(f"instance {instance}:") and instance % 2 == 0
