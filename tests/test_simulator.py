"""The simulated printer: real Klippy (Klipper and Kalico) against the simulated MCUs
with the rich simulator/printer.cfg, and the harness that runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from simulator import FLAVOURS, LIVE, REPO_ROOT, Klippy, survivors

EXPECTED_OBJECTS = [
    "mcu", "mcu toolboard", "extruder", "extruder1", "heater_bed", "heaters",
    "fan", "heater_fan hotend_fan", "heater_fan hotend1_fan",
    "controller_fan electronics_fan", "controller_fan toolboard_fan",
    "fan_generic exhaust_fan", "fan_generic nevermore",
    "temperature_fan chamber_fan", "temperature_fan mcu_fan",
    "temperature_sensor chamber", "temperature_sensor Électronique bay 2",
    "temperature_sensor toolboard_ntc", "temperature_sensor host",
    'temperature_sensor say "hi" C:\\temp', "temperature_sensor mcu_temp",
    "temperature_sensor toolboard_temp",
    "led chamber_led", "neopixel status_leds",
    "temperature_sensor enclosure_env", "bme280 enclosure_env",
    "temperature_sensor hotends_max", "temperature_combined hotends_max",
    "output_pin power_relay", "output_pin caselight", "output_pin toolboard_led",
    "filament_switch_sensor runout", "filament_motion_sensor encoder",
    "tmc2209 stepper_x", "tmc2209 stepper_y", "probe", "bed_mesh", "z_tilt",
    "firmware_retraction", "print_stats", "virtual_sdcard", "pause_resume",
    "exclude_object", "display_status", "idle_timeout", "save_variables",
    "gcode_macro START_PRINT", "query_endstops", "system_stats", "toolhead",
    "gcode_move", "motion_report", "webhooks", "configfile",
]

KALICO_ONLY_OBJECTS = ["extruder_stepper belted_feeder", "pwm_tool laser"]

flavours = pytest.mark.parametrize("klippy_flavour", FLAVOURS, scope="module")


def test_mcu_dict_generator(tmp_path):
    out = tmp_path / "tb.json"
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "simulator", "mcu_dict.py"),
                    str(out), "--name", "toolboard"], check=True)
    data = json.loads(out.read_text())
    assert data["config"]["MCU"] and data["config"]["CLOCK_FREQ"] > 0
    messages = list(data["commands"].values()) + list(data["responses"].values())
    assert len(messages) == len(set(messages)) <= 128
    assert all(-32 <= tag <= 95 for tag in messages)
    assert "identify_response offset=%u data=%.*s" in data["responses"]
    assert "pin" in data["enumerations"] and "i2c_bus" in data["enumerations"]


@flavours
class TestSimulatedPrinter:
    def test_ready_with_expected_objects(self, shared_klippy):
        info = shared_klippy.info()
        assert info["state"] == "ready"
        objects = shared_klippy.object_list()
        expected = EXPECTED_OBJECTS + KALICO_ONLY_OBJECTS * (shared_klippy.flavour == "kalico")
        missing = [o for o in expected if o not in objects]
        assert not missing, "objects missing: %s" % missing
        status = shared_klippy.query(["mcu", "mcu toolboard"])
        assert status["mcu"]["mcu_constants"]["MCU"] == "stm32h723xx"
        assert status["mcu toolboard"]["mcu_constants"]["MCU"] == "rp2040"

    def test_m104_sets_extruder_target(self, shared_klippy):
        shared_klippy.gcode("M104 S200")
        assert shared_klippy.wait_status("extruder", "target", 200.0, timeout=5) == 200.0
        shared_klippy.gcode("M104 S0\nSET_FAN_SPEED FAN=exhaust_fan SPEED=0.5")
        assert shared_klippy.wait_status("fan_generic exhaust_fan", "speed", 0.5) == 0.5
        assert shared_klippy.query("extruder")["extruder"]["target"] == 0.0

    def test_output_pin_and_script(self, shared_klippy):
        # the macros dwell (G4) so that Kalico applies the queued SET_PIN too
        shared_klippy.script("RELAY_ON")
        assert shared_klippy.wait_status("output_pin power_relay", "value", 1.0) == 1.0
        shared_klippy.script("RELAY_OFF")
        assert shared_klippy.wait_status("output_pin power_relay", "value", 0.0) == 0.0

    def test_virtual_sd_print_pauses_and_cancels(self, shared_klippy):
        k = shared_klippy
        k.gcode("SDCARD_PRINT_FILE FILENAME=pause_print.gcode")
        # G28 first: homing runs in real time
        assert k.wait_status("print_stats", "state", "paused", timeout=90) == "paused"
        status = k.query(["print_stats", "exclude_object", "virtual_sdcard"])
        assert status["print_stats"]["filename"] == "pause_print.gcode"
        assert status["print_stats"]["info"] == {"total_layer": 3, "current_layer": 1}
        assert [o["name"] for o in status["exclude_object"]["objects"]] == [
            "CUBE_1", "CYLINDER_2"]
        assert 0 < status["virtual_sdcard"]["progress"] < 1
        k.gcode("CANCEL_PRINT")
        assert k.wait_status("print_stats", "state", "cancelled", timeout=10)
        k.gcode("SDCARD_PRINT_FILE FILENAME=quick_print.gcode")
        assert k.wait_status("print_stats", "filename", "quick_print.gcode", timeout=10)
        assert k.wait_status("print_stats", "state", "complete", timeout=90)

    def test_m112_shutdown_then_firmware_restart_with_new_config(self, klippy):
        klippy.gcode("M112")
        info = klippy.wait_ready(timeout=10, state="shutdown")
        assert "M112" in info["state_message"]
        klippy.write_config(extra_config=(
            "[temperature_sensor added_later]\nsensor_type: Generic 3950\n"
            "sensor_pin: PC12\nmin_temp: -273\nmax_temp: 100\n"))
        klippy.gcode("FIRMWARE_RESTART")
        klippy.wait_ready(timeout=20)
        assert "temperature_sensor added_later" in klippy.object_list()

    def test_moonraker_connects_and_serves_metrics(self, shared_moonraker):
        info = shared_moonraker.server_info()
        assert info["klippy_state"] == "ready"
        assert "prometheus" in info["components"]
        objects = shared_moonraker.get("/printer/objects/list").json()["result"]["objects"]
        assert "temperature_sensor Électronique bay 2" in objects
        assert shared_moonraker.get("/server/metrics").status == 200


def test_harness_leaves_no_process():
    k = Klippy("klipper").start()
    pid = k.proc.pid
    try:
        k.wait_ready()
        assert pid in LIVE
    finally:
        k.cleanup()
    assert pid not in LIVE
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not os.path.exists(k.data_dir)
    assert not [s for s in survivors() if "(pid %d)" % pid in s]


def test_firmware_reports_a_command_it_does_not_handle(tmp_path):
    """The dictionary declares spi_send, the simulated firmware has no SPI device: a
    block carrying it is acknowledged (as the C firmware would) but logged UNHANDLED,
    which every Klippy fixture turns into a test failure."""
    from simulator import mcu_dict, msgproto_for
    from simulator.mcus import SimulatedMCU

    dict_path = mcu_dict.write(str(tmp_path / "mcu.json"))
    config = tmp_path / "printer.cfg"
    config.write_text("[mcu]\nserial: %s\n" % (tmp_path / "tty"))
    mcu = SimulatedMCU("mcu", dict_path, str(config), str(tmp_path / "tty"), str(tmp_path),
                       str(tmp_path), "klipper").start()
    try:
        msgproto = msgproto_for("klipper")
        parser = msgproto.MessageParser()
        with open(dict_path) as f:
            parser.process_identify(json.dumps(json.load(f)).encode(), decompress=False)
        cmd = parser.lookup_command("spi_send oid=%c data=%*s").encode_by_name(
            oid=0, data=b"\x01")
        fd = os.open(str(tmp_path / "tty"), os.O_RDWR | os.O_NOCTTY)
        try:
            head = [5 + len(cmd), 0x10] + cmd  # length, seq 0, message
            os.write(fd, bytes(head + msgproto.crc16_ccitt(head) + [0x7E]))
            deadline = time.monotonic() + 5
            while not mcu.unhandled() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os.close(fd)
        assert any("spi_send" in u for u in mcu.unhandled()), mcu.unhandled()
        assert "spi_send" in mcu.control(op="status")["unhandled"]
    finally:
        mcu.stop()
