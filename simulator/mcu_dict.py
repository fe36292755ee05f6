#!/usr/bin/env python3
"""Write the data dictionary of a simulated MCU.

The dictionary is the MCU's protocol description (commands, responses, constants
and enumerations).  The simulated firmware (simulator/firmware.py) sends it,
zlib-compressed, in answer to ``identify``; Klippy's batch mode (``-o OUTPUT -d
DICT``) reads it from the file instead.  Every command and response that the
printer config makes Klippy use must be declared here with exactly the format
string the firmware would report.

Usage::

    python simulator/mcu_dict.py OUT.json [--name toolboard]

``--name mcu`` (default) describes the main board, an STM32H723-style MCU;
any other name describes a CAN/USB toolboard, an RP2040-style MCU.  A second
MCU ``[mcu NAME]`` is given to Klippy as ``-d NAME=FILE`` and its output goes
to ``OUTPUT-NAME``.

Pure standard library; Python 3.9+.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List

VERSION = "v0.12.0-sim-moonraker-prometheus"
BUILD_VERSIONS = "gcc: (simulated) 12.2.0 binutils: (simulated) 2.40"

# Formats as reported by the Klipper firmware (src/*.c DECL_COMMAND).
COMMANDS: List[str] = [
    # basecmd.c / command.c
    "identify offset=%u count=%c",
    "get_uptime",
    "get_clock",
    "get_config",
    "finalize_config crc=%u",
    "allocate_oids count=%c",
    "emergency_stop",
    "clear_shutdown",
    "reset",
    "debug_nop",
    "debug_ping data=%*s",
    "debug_read order=%c addr=%u",
    "debug_write order=%c addr=%u val=%u",
    # gpiocmds.c
    "config_digital_out oid=%c pin=%u value=%c default_value=%c"
    " max_duration=%u",
    "update_digital_out oid=%c value=%c",
    "queue_digital_out oid=%c clock=%u on_ticks=%u",
    "set_digital_out_pwm_cycle oid=%c cycle_ticks=%u",
    "set_digital_out pin=%u value=%c",
    # pwmcmds.c
    "config_pwm_out oid=%c pin=%u cycle_ticks=%u value=%hu default_value=%hu"
    " max_duration=%u",
    "queue_pwm_out oid=%c clock=%u value=%hu",
    "set_pwm_out pin=%u cycle_ticks=%u value=%hu",
    # adccmds.c
    "config_analog_in oid=%c pin=%u",
    "query_analog_in oid=%c clock=%u sample_ticks=%u sample_count=%c"
    " rest_ticks=%u min_value=%hu max_value=%hu range_check_count=%c",
    # stepper.c
    "config_stepper oid=%c step_pin=%c dir_pin=%c invert_step=%c"
    " step_pulse_ticks=%u",
    "queue_step oid=%c interval=%u count=%hu add=%hi",
    "set_next_step_dir oid=%c dir=%c",
    "reset_step_clock oid=%c clock=%u",
    "stepper_get_position oid=%c",
    "stepper_stop_on_trigger oid=%c trsync_oid=%c",
    # endstop.c / trsync.c
    "config_endstop oid=%c pin=%c pull_up=%c",
    "endstop_home oid=%c clock=%u sample_ticks=%u sample_count=%c"
    " rest_ticks=%u pin_value=%c trsync_oid=%c trigger_reason=%c",
    "endstop_query_state oid=%c",
    "config_trsync oid=%c",
    "trsync_start oid=%c report_clock=%u report_ticks=%u expire_reason=%c",
    "trsync_set_timeout oid=%c clock=%u",
    "trsync_trigger oid=%c reason=%c",
    # buttons.c
    "config_buttons oid=%c button_count=%c",
    "buttons_add oid=%c pos=%c pin=%u pull_up=%c",
    "buttons_query oid=%c clock=%u rest_ticks=%u retransmit_count=%c"
    " invert=%c",
    "buttons_ack oid=%c count=%c",
    # pulse_counter.c
    "config_counter oid=%c pin=%u pull_up=%c",
    "query_counter oid=%c clock=%u poll_ticks=%u sample_ticks=%u",
    # i2ccmds.c
    "config_i2c oid=%c",
    "i2c_set_bus oid=%c i2c_bus=%u rate=%u address=%u",
    "i2c_set_software_bus oid=%c scl_pin=%u sda_pin=%u rate=%u address=%u",
    "i2c_write oid=%c data=%*s",
    "i2c_read oid=%c reg=%*s read_len=%u",
    "i2c_modify_bits oid=%c reg=%*s clear_set_bits=%*s",
    # spicmds.c
    "config_spi oid=%c pin=%u cs_active_high=%c",
    "config_spi_without_cs oid=%c",
    "spi_set_bus oid=%c spi_bus=%u mode=%u rate=%u",
    "spi_set_software_bus oid=%c miso_pin=%u mosi_pin=%u sclk_pin=%u"
    " mode=%u rate=%u",
    "spi_transfer oid=%c data=%*s",
    "spi_send oid=%c data=%*s",
    "config_spi_shutdown oid=%c spi_oid=%c shutdown_msg=%*s",
    # tmcuart.c
    "config_tmcuart oid=%c rx_pin=%u pull_up=%c tx_pin=%u bit_time=%u",
    "tmcuart_send oid=%c write=%*s read=%c",
    # neopixel.c
    "config_neopixel oid=%c pin=%u data_size=%hu bit_max_ticks=%u"
    " reset_min_ticks=%u",
    "neopixel_update oid=%c pos=%hu data=%*s",
    "neopixel_send oid=%c",
]

RESPONSES: List[str] = [
    "identify_response offset=%u data=%.*s",
    "starting",
    "is_shutdown static_string_id=%hu",
    "shutdown clock=%u static_string_id=%hu",
    "stats count=%u sum=%u sumsq=%u",
    "uptime high=%u clock=%u",
    "clock clock=%u",
    "config is_config=%c crc=%u is_shutdown=%c move_count=%hu",
    "pong data=%*s",
    "debug_result val=%u",
    "analog_in_state oid=%c next_clock=%u value=%hu",
    "stepper_position oid=%c pos=%i",
    "endstop_state oid=%c homing=%c next_clock=%u pin_value=%c",
    "trsync_state oid=%c can_trigger=%c trigger_reason=%c clock=%u",
    "buttons_state oid=%c ack_count=%c state=%*s",
    "counter_state oid=%c next_clock=%u count=%u count_clock=%u",
    "i2c_read_response oid=%c response=%*s",
    "spi_transfer_response oid=%c response=%*s",
    "tmcuart_response oid=%c read=%*s",
    "neopixel_result oid=%c success=%c",
]

STATIC_STRINGS = [
    "ADC out of range",
    "Timer too close",
    "Missed scheduling of next digital out event",
    "Scheduled digital out event will exceed max_duration",
    "Command request",
    "Shutdown cleared when not shutdown",
    "Stepper too far in past",
    "Rescheduled timer in the past",
]


def _board(name: str) -> Dict[str, object]:
    """Constants and enumerations of the main board or of a toolboard."""
    if name == "mcu":
        pins = {"P%s0" % port: [i * 16, 16] for i, port in enumerate("ABCDEFG")}
        return {
            "config": {
                "MCU": "stm32h723xx",
                "CLOCK_FREQ": 400000000,
                "ADC_MAX": 4095,
                "PWM_MAX": 255,
                "STATS_SUMSQ_BASE": 256,
                "RECEIVE_WINDOW": 192,
                "BUS_PINS_i2c1": "PB6,PB7",
                "BUS_PINS_i2c2": "PF1,PF0",
                "BUS_PINS_spi1": "PA6,PA7,PA5",
                "BUS_PINS_spi2": "PB14,PB15,PB13",
                "RESERVE_PINS_USB": "PA11,PA12",
                "RESERVE_PINS_crystal": "PH0,PH1",
            },
            "enumerations": {
                "pin": dict(pins, PH0=[112, 2], ADC_TEMPERATURE=200),
                "i2c_bus": {"i2c1": 0, "i2c2": 1},
                "spi_bus": {"spi1": 0, "spi2": 1},
            },
        }
    return {
        "config": {
            "MCU": "rp2040",
            "CLOCK_FREQ": 12000000,
            "ADC_MAX": 4095,
            "PWM_MAX": 255,
            "STATS_SUMSQ_BASE": 256,
            "RECEIVE_WINDOW": 192,
            "BUS_PINS_i2c0a": "gpio0,gpio1",
            "BUS_PINS_spi0a": "gpio0,gpio3,gpio2",
            "RESERVE_PINS_USB": "",
        },
        "enumerations": {
            "pin": {"gpio0": [0, 30], "ADC_TEMPERATURE": 200},
            "i2c_bus": {"i2c0a": 0, "i2c1a": 1},
            "spi_bus": {"spi0a": 0, "spi1a": 1},
        },
    }


def build(name: str = "mcu") -> Dict[str, object]:
    """Return the dictionary (a JSON-serialisable dict) for MCU ``name``."""
    # Klippy sends ``identify`` before it knows the dictionary, so (as in the
    # firmware) identify_response has id 0 and identify id 1.
    first = [RESPONSES[0], COMMANDS[0]]
    messages = first + RESPONSES[1:] + COMMANDS[1:]
    if len(messages) > 128:  # Klippy supports single byte message ids only
        raise ValueError("too many messages: %d" % len(messages))
    # message ids 0..95 then -32..-1 (Klippy's msgtag range)
    tags = dict(zip(messages, [i if i < 96 else i - 128 for i in range(len(messages))]))
    responses = {m: tags[m] for m in RESPONSES}
    commands = {m: tags[m] for m in COMMANDS}
    board = _board(name)
    config = dict(board["config"])  # type: ignore[arg-type]
    # empty reservations are not valid pin lists
    config = {k: v for k, v in config.items() if v != ""}
    enums = dict(board["enumerations"])  # type: ignore[arg-type]
    enums["static_string_id"] = {s: i for i, s in enumerate(STATIC_STRINGS)}
    return {
        "version": VERSION,
        "build_versions": BUILD_VERSIONS,
        "app": "Klipper",
        "license": "GNU GPLv3",
        "commands": commands,
        "responses": responses,
        "config": config,
        "enumerations": enums,
    }


def write(path: str, name: str = "mcu") -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(build(name), f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output JSON file")
    parser.add_argument("--name", default="mcu",
                        help="MCU name: 'mcu' (main board) or a toolboard name")
    args = parser.parse_args(argv)
    write(args.out, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
