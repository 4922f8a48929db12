"""A model's serving settings, read from the optional `DIR/<model>/config.json`.

    {
      "max_batch_size": 8,
      "dynamic_batching": {"max_queue_delay_microseconds": 500, "preferred_batch_size": [4, 8]},
      "instance_count": 2,
      "max_queue_size": 64,
      "num_threads": 1,
      "platform": "ember_netdef"
    }

Every key is optional. `max_batch_size > 0` declares that dimension 0 of every input and output is
the batch dimension (the model's own shapes must have -1 there); `dynamic_batching` (which needs
max_batch_size > 0) lets the server merge queued requests into one run. Without it each request
runs on its own, on the first free instance.

    >>> ModelSettings.from_json('{"max_batch_size": 4, "dynamic_batching": {}}').max_batch_size
    4
"""
import dataclasses
import json

from serving.errors import ModelConfigError

DEFAULT_MAX_QUEUE_SIZE = 128


@dataclasses.dataclass(frozen=True)
class DynamicBatching:
    """When to run a batch: as soon as it reaches the largest preferred size (or max_batch_size),
    otherwise once its oldest request has waited `max_queue_delay_microseconds`."""

    max_queue_delay_microseconds: int = 0
    preferred_batch_size: tuple = ()


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Parsed, validated config.json of one model (the defaults when the file is absent)."""

    max_batch_size: int = 0
    dynamic_batching: DynamicBatching = None
    instance_count: int = 1
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    num_threads: int = None
    platform: str = "ember_netdef"

    @classmethod
    def from_json(cls, text, source="config.json"):
        """Parses config.json text; ModelConfigError naming `source` and the key on bad input."""
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as e:
            raise ModelConfigError(f"{source}: not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ModelConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data, source="config.json"):
        """Validates a decoded config.json object."""
        known = {"max_batch_size", "dynamic_batching", "instance_count", "max_queue_size",
                 "num_threads", "platform", "name", "backend"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        max_batch_size = _int(data, "max_batch_size", 0, 0, source)
        instance_count = _int(data, "instance_count", 1, 1, source)
        max_queue_size = _int(data, "max_queue_size", DEFAULT_MAX_QUEUE_SIZE, 1, source)
        num_threads = data.get("num_threads")
        if num_threads is not None:
            num_threads = _int(data, "num_threads", None, 1, source)
        platform = data.get("platform", "ember_netdef")
        if not isinstance(platform, str):
            raise ModelConfigError(f"{source}: 'platform' must be a string, got {platform!r}")
        batching = None
        if "dynamic_batching" in data:
            batching = _dynamic_batching(data["dynamic_batching"], max_batch_size, source)
        return cls(max_batch_size, batching, instance_count, max_queue_size, num_threads, platform)


def _int(data, key, default, minimum, source):
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelConfigError(f"{source}: '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _dynamic_batching(section, max_batch_size, source):
    if not isinstance(section, dict):
        raise ModelConfigError(f"{source}: 'dynamic_batching' must be an object, got {section!r}")
    unknown = sorted(set(section) - {"max_queue_delay_microseconds", "preferred_batch_size"})
    if unknown:
        raise ModelConfigError(f"{source}: unknown key(s) {unknown} in 'dynamic_batching'")
    if max_batch_size <= 0:
        raise ModelConfigError(f"{source}: 'dynamic_batching' needs 'max_batch_size' > 0")
    delay = _int(section, "max_queue_delay_microseconds", 0, 0, source + " dynamic_batching")
    preferred = section.get("preferred_batch_size", [])
    if not isinstance(preferred, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= max_batch_size
            for p in preferred):
        raise ModelConfigError(
            f"{source}: 'dynamic_batching.preferred_batch_size' must be a list of integers in "
            f"[1, max_batch_size={max_batch_size}], got {preferred!r}")
    return DynamicBatching(delay, tuple(sorted(set(preferred))))
