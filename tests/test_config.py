"""The typed config: demo defaults, the commented default, strict errors that name the key."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import platformdirs
import pytest

from edgeapp import paths
from edgeapp.config import (
    SEED_RENAMES,
    Config,
    StationConfig,
    config_from_dict,
    default_config_yaml,
    load_config,
    parse_yaml,
)
from edgeapp.errors import ConfigError

SEED_YAML = """\
rtsp_urls:
  - rtsp://192.168.1.100:8554/station_1
  - rtsp://user:secret@192.168.1.100:8554/station_2
yolo_model_path: ./models/yolo11n_openvino_model
inventory_path: ./config/inventory.json
orders_path: ./config/orders.json
queue_backend: redis
redis_host: redis.local
redis_port: 6380
vlm:
  ovms_url: http://ovms:8000
  model_name: qwen
  batch_window_ms: 100
  max_batch_size: 16
  max_workers: 6
scaling:
  enabled: true
  scale_up_gpu_threshold: 85.0
  scale_up_cpu_threshold: 80.0
  scale_up_latency_threshold: 5.0
  scale_down_gpu_threshold: 95.0
  scale_down_cpu_threshold: 90.0
  scale_down_latency_threshold: 5.0
  hysteresis_window: 30.0
  min_stations: 1
  max_stations: 8
"""


def write(folder: Path, text: str, name: str = "edgeapp.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(data: object, base_dir: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, base_dir)
    message = str(info.value)
    assert "\n" not in message, "a config error is one line"
    assert message.startswith("config error: ")
    return message


# --- defaults -------------------------------------------------------------------------------

def test_no_file_gives_the_built_in_demo():
    cfg = load_config(None)

    assert [s.name for s in cfg.stations] == ["station-1", "station-2", "station-3", "station-4"]
    assert {s.source for s in cfg.stations} == {"synthetic"}
    assert [s.seed for s in cfg.stations] == [0, 1, 2, 3]
    assert (cfg.stations[0].fps, cfg.stations[0].width, cfg.stations[0].height) == (15.0, 1280,
                                                                                   720)
    assert cfg.orders_path == paths.demo_orders_path() and cfg.orders_path.is_file()
    assert cfg.inventory_path == paths.demo_inventory_path() and cfg.inventory_path.is_file()
    assert cfg.data_dir == Path(platformdirs.user_data_dir("edgeapp", appauthor=False))
    assert cfg.distributed.keys_dir == cfg.data_dir / "keys"
    assert cfg.models.path == paths.shipped_models_dir()
    assert cfg.stream.fps_levels == (1.0, 0.66, 0.5, 0.33)
    assert cfg.vlm.batch_window_ms == 50 and cfg.vlm.max_in_flight == 4
    assert cfg.controller.kind == "aif" and cfg.scaling.enabled is False
    assert cfg == Config(), "load_config(None) and Config() are the same demo"


def test_config_is_frozen():
    cfg = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vlm.batch_window_ms = 10  # type: ignore[misc]


def test_the_commented_default_round_trips(tmp_path):
    text = default_config_yaml()
    path = write(tmp_path, text)

    assert load_config(path) == load_config(None)
    # Every key has its comment line just above it; station keys are explained once, as a block.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^( {2})?[a-z_]+:", line):
            assert lines[i - 1].lstrip().startswith("# "), f"no comment above {line!r}"
    for f in dataclasses.fields(StationConfig):
        assert f"#   {f.name}: " in text, f"station key {f.name} is not explained"


def test_an_empty_file_and_empty_sections_are_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()
    assert load_config(write(tmp_path, "vlm:\nslo:\n", "b.yaml")) == Config()


def test_a_small_file_changes_only_what_it_says(tmp_path):
    cfg = load_config(write(tmp_path, """\
        stations:
          - source: synthetic
            fps: 5
          - {name: back, source: usb:1}
        vlm: {backend: openai, batch_window_ms: 0}
        data_dir: data
        """))

    assert [s.name for s in cfg.stations] == ["station-1", "back"]
    assert cfg.stations[0].fps == 5.0 and isinstance(cfg.stations[0].fps, float)
    assert cfg.stations[1].seed == 1, "a station's seed defaults to its index"
    assert cfg.vlm.backend == "openai" and cfg.vlm.batch_window_ms == 0
    assert cfg.vlm.max_batch_size == 16
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.distributed.keys_dir == tmp_path / "data" / "keys", "keys follow data_dir"


# --- seed compatibility ---------------------------------------------------------------------

def test_a_seed_system_config_loads_with_its_keys_mapped(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "models" / "yolo11n_openvino_model").mkdir(parents=True)
    for name in ("orders.json", "inventory.json"):
        (tmp_path / "config" / name).write_text("{}")

    cfg = load_config(write(tmp_path, SEED_YAML, "system_config.yaml"))

    assert [(s.name, s.source) for s in cfg.stations] == [
        ("station-1", "rtsp://192.168.1.100:8554/station_1"),
        ("station-2", "rtsp://user:secret@192.168.1.100:8554/station_2"),
    ]
    assert cfg.models.path == tmp_path / "models" / "yolo11n_openvino_model"
    assert cfg.orders_path == tmp_path / "config" / "orders.json"
    assert cfg.queue_backend == "redis"
    assert (cfg.redis.host, cfg.redis.port) == ("redis.local", 6380)
    assert cfg.vlm.url == "http://ovms:8000" and cfg.vlm.model_name == "qwen"
    assert cfg.vlm.max_in_flight == 6 and cfg.vlm.batch_window_ms == 100
    assert cfg.scaling.enabled is True and cfg.scaling.hysteresis_window == 30.0
    assert cfg.scaling.max_stations == 8


def test_seed_storage_is_refused_pointing_at_the_data_folder():
    message = error_of({"storage": {"minio_endpoint": "localhost:9000", "minio_bucket": "o"}})
    assert message.startswith("config error: storage = ")
    assert "data_dir" in message and "not supported" in message


def test_errors_in_renamed_seed_keys_name_the_key_the_file_used():
    assert error_of({"vlm": {"max_workers": 0}}).startswith(
        "config error: vlm.max_workers = 0: expected an integer")
    assert error_of({"rtsp_urls": ["rtsp://a/1", "ftp://b/2"]}).startswith(
        "config error: rtsp_urls[1] = 'ftp://b/2': expected synthetic")
    assert error_of({"redis_port": 0}).startswith("config error: redis_port = 0:")


def test_a_seed_key_and_its_new_name_together_are_an_error():
    message = error_of({"vlm": {"ovms_url": "http://a:1", "url": "http://b:2"}})
    assert "vlm.ovms_url" in message and "keep only vlm.url" in message


def test_rename_table_lists_the_seed_keys():
    assert SEED_RENAMES["vlm.max_workers"] == "vlm.max_in_flight"
    assert SEED_RENAMES["rtsp_urls"] == "stations"


# --- errors name the key --------------------------------------------------------------------

@pytest.mark.parametrize(("data", "start"), [
    ({"vlm": {"batch_window_ms": -5}},
     "config error: vlm.batch_window_ms = -5: expected an integer >= 0"),
    ({"vlm": {"batch_window_ms": "fast"}},
     "config error: vlm.batch_window_ms = 'fast': expected an integer >= 0"),
    ({"vlm": {"max_batch_size": 2.5}},
     "config error: vlm.max_batch_size = 2.5: expected an integer between 1 and 1024"),
    ({"stations": [{}, {}, {"fps": 0}]},
     "config error: stations[2].fps = 0: expected a number > 0"),
    ({"stations": [{"wrong_order_rate": 1.5}]},
     "config error: stations[0].wrong_order_rate = 1.5: expected a number between 0 and 1"),
    ({"stations": [{"loop": "yes please"}]},
     "config error: stations[0].loop = 'yes please': expected true or false"),
    ({"stations": [{"source": "usb:x"}]}, "config error: stations[0].source = 'usb:x':"),
    ({"stations": []}, "config error: stations = []: expected a list of station entries"),
    ({"stations": [{"name": "a"}, {"name": "a"}]},
     "config error: stations[1].name = 'a': expected a unique name (stations[0] has it)"),
    ({"controller": {"kind": "pid"}},
     "config error: controller.kind = 'pid': expected one of: aif, heuristic, static"),
    ({"stream": {"fps_levels": [0.5, 1.0]}},
     "config error: stream.fps_levels = [0.5, 1.0]: expected a list of numbers"),
    ({"stream": {"fps_levels": [1.0, 2.0]}},
     "config error: stream.fps_levels[1] = 2.0: expected a number > 0 and <= 1"),
    ({"distributed": {"producer_bind": "localhost:5555"}},
     "config error: distributed.producer_bind = 'localhost:5555': expected a ZeroMQ endpoint"),
    ({"vlm": {"url": "ovms:8000"}}, "config error: vlm.url = 'ovms:8000': expected an http"),
    ({"vlm": 3}, "config error: vlm = 3: expected a mapping of vlm settings"),
    ({"scaling": {"min_stations": 5, "max_stations": 2}},
     "config error: scaling.min_stations = 5: expected <= scaling.max_stations (2)"),
    ({"scaling": {"scale_up_cpu_threshold": 95}},
     "config error: scaling.scale_up_cpu_threshold = 95.0: expected <= "
     "scaling.scale_down_cpu_threshold (90.0)"),
    ({"data_dir": 7}, "config error: data_dir = 7: expected a path, or null"),
])
def test_a_bad_value_names_its_key_value_and_what_was_expected(data, start):
    assert error_of(data).startswith(start)


def test_an_unknown_key_is_an_error_with_a_suggestion():
    assert error_of({"vlm": {"batch_windw_ms": 5}}) == (
        "config error: vlm.batch_windw_ms = 5: unknown key (did you mean batch_window_ms?)")
    assert error_of({"stations": [{"camera": "x"}]}).startswith(
        "config error: stations[0].camera = 'x': unknown key")
    assert error_of({"colour": "red"}).startswith("config error: colour = 'red': unknown key")


def test_credentials_in_a_bad_url_are_not_shown():
    message = error_of({"stations": [{"source": "ftp://user:secret@cam/1"}]})
    assert "secret" not in message and "***@cam" in message


def test_a_missing_file_names_its_key(tmp_path):
    message = error_of({"orders_path": "nope/orders.json"}, tmp_path)
    assert message.startswith("config error: orders_path = 'nope/orders.json': expected an "
                              "existing file")
    assert str(tmp_path / "nope" / "orders.json") in message


def test_file_level_errors_are_one_line(tmp_path):
    cases = {
        "missing.yaml": None,
        "broken.yaml": "vlm: [1, 2\n",
        "twice.yaml": "vlm:\n  url: http://a:1\n  url: http://b:2\n",
        "list.yaml": "- 1\n- 2\n",
    }
    for name, text in cases.items():
        if text is not None:
            write(tmp_path, text, name)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name)
        message = str(info.value)
        assert "\n" not in message and message.startswith("config error: "), message
        assert name in message, message
    with pytest.raises(ConfigError, match="'url' is written twice"):
        load_config(tmp_path / "twice.yaml")


def test_parse_yaml_is_safe():
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("x: !!python/object/apply:os.system ['true']\n")


# --- paths ----------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "orders.json").write_text("{}")
    (folder / "clips").mkdir()
    monkeypatch.chdir(tmp_path)  # the working folder must not matter

    cfg = load_config(write(folder, """\
        orders_path: data/orders.json
        data_dir: ../state
        distributed: {keys_dir: keys}
        stations:
          - source: clips/counter.mp4
          - source: file://clips/back.mp4
          - source: rtsp://cam/1
        """))

    assert cfg.orders_path == folder / "data" / "orders.json"
    assert cfg.data_dir == tmp_path / "state"
    assert cfg.distributed.keys_dir == folder / "keys"
    assert [s.source for s in cfg.stations] == [
        str(folder / "clips" / "counter.mp4"), str(folder / "clips" / "back.mp4"),
        "rtsp://cam/1"]


def test_null_paths_mean_the_shipped_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "orders_path: null\nmodels: {path: null}\n"))
    assert cfg.orders_path == paths.demo_orders_path()
    assert cfg.models.path == paths.shipped_models_dir()
