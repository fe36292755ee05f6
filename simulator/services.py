"""A Moonraker configured with the stand-in services, and reading its metrics.

moonraker_conf() gives the moonraker.conf additions that wire a Moonraker to
simulator/mqtt_standin.py (an MQTT `[sensor room]`), simulator/spoolman_standin.py and the
simulated printer's power relay; samples()/scrape()/wait_metrics() read /server/metrics as
{sample name with labels: value}. Used by tests/test_moonraker_collectors.py and
bench/bench_moonraker_collectors.py.
"""
from __future__ import annotations

import json
import re
import time
from typing import Callable, Dict, Optional

from .moonraker import Moonraker

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def samples(text: str) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"unparseable line {line!r}"
        out[m.group(1)] = float(m.group(2))
    return out


def scrape(moonraker: Moonraker, modules: Optional[str] = None) -> Dict[str, float]:
    response = moonraker.metrics(params={"modules": modules} if modules else None)
    assert response.status == 200, response.text
    return samples(response.text)


def wait_metrics(moonraker: Moonraker, check: Callable[[Dict[str, float]], bool],
                 timeout: float = 10.0, modules: Optional[str] = None) -> Dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(moonraker, modules)
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"metrics never matched; last scrape: {json.dumps(found, indent=1)}")
        time.sleep(0.1)


def moonraker_conf(mqtt_port: int, spoolman_url: Optional[str]) -> str:
    conf = f"""
[job_queue]
load_on_startup: False
automatic_transition: False

[power relay]
type: klipper_device
object_name: output_pin power_relay

[mqtt]
address: 127.0.0.1
port: {mqtt_port}
instance_name: testprinter

[sensor room]
type: mqtt
name: Room climate
state_topic: test/room/state
state_response_template:
  {{% set data = payload|fromjson %}}
  {{set_result("temperature", data["temperature"]|float)}}
  {{set_result("humidity", data["humidity"]|float)}}
parameter_temperature:
  units=C
parameter_humidity:
  units=%
"""
    if spoolman_url:
        conf += f"\n[spoolman]\nserver: {spoolman_url}\nsync_rate: 1\n"
    return conf


def settle(moonraker: Moonraker) -> None:
    """Wait until every component has handled klippy_ready.

    A print started while components still subscribe to Klippy objects can change
    print_stats between two subscription requests; Klippy then reports the new state in a
    subscription reply instead of a push, and Moonraker's job_state (hence history) never
    sees the job start.
    """
    moonraker.wait_klippy_ready()
    wait_metrics(moonraker, lambda s: any(k.startswith("klipper_print_state_info") for k in s) and
                 'klipper_power_device_status{device="relay"}' in s, modules="printer,power")
    time.sleep(1.0)
