"""config.json parsing: defaults, accepted values, and errors that name the key to fix."""
import pytest

from serving.config import DEFAULT_MAX_QUEUE_SIZE, DynamicBatching, ModelSettings
from serving.errors import ModelConfigError


def test_defaults_and_full_config():
    assert ModelSettings.from_json("") == ModelSettings()
    assert ModelSettings().max_queue_size == DEFAULT_MAX_QUEUE_SIZE
    settings = ModelSettings.from_json(
        '{"max_batch_size": 8, "instance_count": 2, "max_queue_size": 5, "num_threads": 1,'
        ' "dynamic_batching": {"max_queue_delay_microseconds": 300, "preferred_batch_size": [8, 4, 4]}}')
    assert settings.max_batch_size == 8 and settings.instance_count == 2
    assert settings.max_queue_size == 5 and settings.num_threads == 1
    assert settings.dynamic_batching == DynamicBatching(300, (4, 8))


@pytest.mark.parametrize("text, message", [
    ("[1]", "expected a JSON object, got list"),
    ("{", "not valid JSON"),
    ('{"max_batch": 4}', r"unknown key\(s\) \['max_batch'\]"),
    ('{"max_batch_size": -1}', "'max_batch_size' must be an integer >= 0, got -1"),
    ('{"instance_count": 0}', "'instance_count' must be an integer >= 1, got 0"),
    ('{"instance_count": true}', "'instance_count' must be an integer >= 1, got True"),
    ('{"dynamic_batching": {}}', "'dynamic_batching' needs 'max_batch_size' > 0"),
    ('{"max_batch_size": 4, "dynamic_batching": {"preferred_batch_size": [8]}}',
     r"preferred_batch_size' must be a list of integers in \[1, max_batch_size=4\], got \[8\]"),
    ('{"max_batch_size": 4, "dynamic_batching": {"delay": 1}}', r"unknown key\(s\) \['delay'\]"),
])
def test_bad_config_names_the_problem(text, message):
    with pytest.raises(ModelConfigError, match=message) as info:
        ModelSettings.from_json(text, "models/m/config.json")
    assert str(info.value).startswith("models/m/config.json")
