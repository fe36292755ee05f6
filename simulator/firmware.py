#!/usr/bin/env python3
"""Simulated Klipper MCU firmware on a pseudo-terminal.

One process plays one ``[mcu ...]``: it opens a pty, links it where the config's
``serial:`` points, and speaks Klipper's serial protocol as the C firmware does
(src/command.c: blocks, 4-bit sequence numbers, CRC16, acks and naks, resync on
0x7E; src/sched.c: shutdown and stats).  Commands are decoded with Klippy's own
``msgproto`` against the data dictionary from simulator/mcu_dict.py.  What is
wired to the pins comes from simulator/world.py.

    python simulator/firmware.py --name mcu --dict DICT.json --config printer.cfg \
        --serial /path/of/serial/link --control CONTROL.sock [--time-factor 1]

Every command Klippy sends must have a handler here: one without is logged as
``UNHANDLED command`` (the test harness fails on it) and answered with nothing.

Control interface (``--control``, a Unix stream socket, one JSON object per line
in, one per line out; see simulator/README.md):
    {"op": "status"}
    {"op": "fault", "fault": "corrupt", "rate": 0.2}   flip a bit in that share of the
                                                       blocks sent and reads received
    {"op": "fault", "fault": "drop", "rate": 0.2}      lose them instead
    {"op": "fault", "fault": "mute"}                   stop answering entirely
    {"op": "fault", "fault": "open"|"short", "sensor": "extruder"}
    {"op": "fault", "fault": "heater_disconnect", "heater": "extruder"}
    {"op": "fault", "fault": "late", "seconds": 0.2}   stall the scheduler
    {"op": "clear"}                                     remove every fault
    {"op": "hold", "sensor": "temperature_sensor garage", "temp": -3.0}
                                                        the thermistor reads -3 degC
                                                        (a place, not a fault: "clear"
                                                        keeps it; "temp": null releases)
"""
from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import pty
import random
import selectors
import socket
import sys
import time
import tty
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

try:
    from . import world as world_mod
except ImportError:  # run as a script: simulator/ is sys.path[0]
    import world as world_mod  # type: ignore[no-redef]

MESSAGE_MIN, MESSAGE_MAX, MESSAGE_SYNC, MESSAGE_DEST = 5, 64, 0x7E, 0x10
STATS_PERIOD = 5.0
TIMER_LATE = 0.1  # seconds a timer may wake late after an injected stall
# Commands the firmware runs while shut down (HF_IN_SHUTDOWN in src/*.c)
IN_SHUTDOWN = {"identify", "get_uptime", "get_clock", "get_config", "emergency_stop",
               "clear_shutdown", "reset", "debug_nop", "debug_ping", "debug_read",
               "debug_write", "stepper_get_position", "endstop_query_state",
               "trsync_trigger", "buttons_ack"}
REASON_ENDSTOP_HIT = 1


def import_msgproto(klippy_dir: Optional[str]):
    """Klippy's msgproto module (from ``klippy_dir`` or an installed ``klippy``)."""
    if klippy_dir:
        sys.path.insert(0, klippy_dir)
        import msgproto  # type: ignore
        return msgproto
    from klippy import msgproto  # type: ignore
    return msgproto


class Stepper:
    """Step queue of one stepper: segments of (start clock, interval, count, add, dir)."""

    def __init__(self, oid: int):
        self.oid = oid
        self.base = 0  # steps of folded segments
        # 32-bit clock of the last step, as in the firmware: after a reset to 0
        # the next interval is an absolute clock
        self.next_clock = 0
        self.dir = 0
        self.segments: List[Tuple[int, int, int, int, int]] = []
        self.stopped_at: Optional[int] = None  # trigger clock; moves discarded until reset
        self.trsync: Optional[int] = None

    @staticmethod
    def _steps_before(seg, clock: int) -> int:
        base, interval, count, add, _d = seg
        if clock >= base + count * interval + add * count * (count - 1) // 2:
            return count
        lo, hi = 0, count  # largest k with step time <= clock
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if base + mid * interval + add * mid * (mid - 1) // 2 <= clock:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def queue(self, interval: int, count: int, add: int, clock64) -> None:
        if self.stopped_at is not None:
            return
        first = clock64((self.next_clock + interval) & 0xffffffff)
        base = first - interval
        self.segments.append((base, interval, count, add, self.dir))
        self.next_clock = (base + count * interval + add * count * (count - 1) // 2) & 0xffffffff

    def position(self, clock: int) -> int:
        pos = self.base
        for seg in self.segments:
            n = self._steps_before(seg, clock)
            pos += n if seg[4] else -n
            if n < seg[2]:
                break
        return pos

    def fold(self, clock: int) -> None:
        """Forget segments completed before ``clock``."""
        while self.segments:
            seg = self.segments[0]
            if self._steps_before(seg, clock) < seg[2]:
                break
            self.base += seg[2] if seg[4] else -seg[2]
            self.segments.pop(0)

    def stop(self, clock: int) -> None:
        self.base = self.position(clock)
        self.segments = []
        self.stopped_at = clock

    def reset_clock(self, clock: int) -> None:
        self.fold(1 << 62)
        self.stopped_at = None
        self.next_clock = clock


class Firmware:
    def __init__(self, name: str, dictionary: Dict[str, Any], world: "world_mod.World",
                 msgproto, link_path: str, control_path: Optional[str]):
        self.name = name
        self.log = logging.getLogger("sim." + name)
        self.world = world
        self.raw_dict = json.dumps(dictionary).encode()
        self.identify_data = zlib.compress(self.raw_dict)
        self.parser = msgproto.MessageParser()
        self.parser.process_identify(self.identify_data)
        self.crc16 = msgproto.crc16_ccitt
        consts = dictionary["config"]
        self.freq = float(consts["CLOCK_FREQ"])
        self.adc_max = int(consts.get("ADC_MAX", 4095))
        self.sumsq_base = float(consts.get("STATS_SUMSQ_BASE", 256))
        self.mcu_type = str(consts.get("MCU", ""))
        self.t0 = time.monotonic() - random.uniform(5, 50)  # boot happened a bit earlier
        self.sel = selectors.DefaultSelector()
        self.timers: List[Tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self.unhandled: Dict[str, int] = {}
        self.faults: Dict[str, Any] = {}
        self.counters = {"blocks_in": 0, "blocks_out": 0, "naks": 0, "bad_blocks": 0}
        self._open_pty(link_path)
        self.control: Optional[socket.socket] = None
        if control_path:
            self._open_control(control_path)
        self.handlers = {n[len("cmd_"):]: getattr(self, n) for n in dir(self)
                         if n.startswith("cmd_")}
        self.stats_count = 0
        self.stats_sum = 0
        self.stats_sumsq = 0
        self.boot()
        self.add_timer(time.monotonic() + 0.1, self._physics_tick)
        self.add_timer(time.monotonic() + STATS_PERIOD, self._send_stats)

    # ------------------------------------------------------------ state
    def boot(self) -> None:
        """Power-on state (also what ``reset`` returns to)."""
        self.next_seq = 0
        self.rx = bytearray()
        self.need_sync = False
        self.need_valid = False
        self.is_config = 0
        self.config_crc = 0
        self.oids: Dict[int, Dict[str, Any]] = {}
        self.shutdown_reason: Optional[str] = None
        self.generation = getattr(self, "generation", 0) + 1  # invalidates timers
        for pin in list(self.world.duties):
            self.world.set_duty(pin, 0.0)

    def clock(self, at: Optional[float] = None) -> int:
        return int(((time.monotonic() if at is None else at) - self.t0) * self.freq)

    def clock_to_time(self, clock: int) -> float:
        return self.t0 + clock / self.freq

    def clock64(self, clock32: int) -> int:
        now = self.clock()
        c = (now & ~0xffffffff) | clock32
        if c > now + (1 << 31):
            c -= 1 << 32
        elif c < now - (1 << 31):
            c += 1 << 32
        return c

    # ------------------------------------------------------------ timers
    def add_timer(self, when: float, func: Callable[[], None], generational=False) -> None:
        if generational:
            gen, inner = self.generation, func

            def func():  # type: ignore[no-redef]
                if gen == self.generation and self.shutdown_reason is None:
                    inner()
        self._timer_seq += 1
        heapq.heappush(self.timers, (when, self._timer_seq, func))

    def run(self) -> None:
        while True:
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            events = self.sel.select(timeout)
            # the handlers' own CPU time: the host preempting this process (a loaded CI
            # machine) is no MCU load, and wall time made KlipperMcuLoadHigh fire there
            start = time.thread_time()
            for key, _mask in events:
                key.data()
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _w, _s, func = heapq.heappop(self.timers)
                func()
            busy = int((time.thread_time() - start) * self.freq)
            self.stats_count += 1
            self.stats_sum += busy
            sq = self.stats_sumsq + -(-busy * busy // int(self.sumsq_base))
            self.stats_sumsq = min(sq, 0xffffffff)

    def _physics_tick(self) -> None:
        self.world.advance(0.1)
        self.add_timer(time.monotonic() + 0.1, self._physics_tick)

    def _send_stats(self) -> None:
        if self.is_config and self.shutdown_reason is None:
            self.send("stats", count=max(1, self.stats_count),
                      sum=self.stats_sum & 0xffffffff, sumsq=self.stats_sumsq)
        self.stats_count = self.stats_sum = self.stats_sumsq = 0
        self.add_timer(time.monotonic() + STATS_PERIOD, self._send_stats)

    # -------------------------------------------------------------- link
    def _open_pty(self, link_path: str) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        slave_name = os.ttyname(self.slave)
        tmp = link_path + ".tmp%d" % os.getpid()
        os.symlink(slave_name, tmp)
        os.replace(tmp, link_path)
        self.link_path = link_path
        self.sel.register(self.master, selectors.EVENT_READ, self._read_serial)

    def _open_control(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control.bind(path)
        self.control.listen(4)
        self.control.setblocking(False)
        self.sel.register(self.control, selectors.EVENT_READ, self._accept_control)

    def _accept_control(self) -> None:
        conn, _ = self.control.accept()  # type: ignore[union-attr]
        conn.setblocking(True)
        conn.settimeout(2.0)
        buf = b""
        try:
            while not buf.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buf += chunk
            for line in buf.splitlines():
                if line.strip():
                    reply = self.control_request(json.loads(line))
                    conn.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError) as e:
            self.log.warning("control connection: %s", e)
        finally:
            conn.close()

    def write(self, data: bytes) -> None:
        if self.faults.get("mute"):
            return
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            pass  # nobody reading: bytes are lost, as on a UART

    def send_block(self, payload: List[int]) -> None:
        msglen = MESSAGE_MIN + len(payload)
        block = [msglen, MESSAGE_DEST | self.next_seq] + payload
        block += self.crc16(block) + [MESSAGE_SYNC]
        data = bytearray(block)
        drop = self.faults.get("drop", 0.0)
        if drop and random.random() < drop:
            return
        corrupt = self.faults.get("corrupt", 0.0)
        if corrupt and random.random() < corrupt:
            data[random.randrange(1, len(data) - 1)] ^= 1 << random.randrange(8)
        self.counters["blocks_out"] += 1
        self.write(bytes(data))

    def send(self, name: str, **params: Any) -> None:
        msg = self.parser.messages_by_name[name]
        self.send_block(msg.encode_by_name(**params))

    def _read_serial(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return
        if self.faults.get("mute"):
            return
        # the line faults hit both directions: what Klippy sent arrives damaged
        # or not at all, so Klippy retransmits
        if self.faults.get("drop", 0.0) > random.random():
            return
        if self.faults.get("corrupt", 0.0) > random.random():
            data = bytearray(data)
            data[random.randrange(len(data))] ^= 1 << random.randrange(8)
        self.rx += data
        while self.rx:
            n = self._find_block()
            if n == 0:
                break

    def _find_block(self) -> int:
        """src/command.c command_find_block: consume bytes, dispatch valid blocks."""
        buf = self.rx
        if self.need_sync:
            return self._resync()
        if len(buf) < MESSAGE_MIN:
            return 0
        msglen, seq = buf[0], buf[1]
        if msglen < MESSAGE_MIN or msglen > MESSAGE_MAX or (seq & 0xf0) != MESSAGE_DEST:
            return self._error()
        if len(buf) < msglen:
            return 0
        if buf[msglen - 1] != MESSAGE_SYNC or \
                list(buf[msglen - 3:msglen - 1]) != self.crc16(buf[:msglen - 3]):
            return self._error()
        block = bytes(buf[:msglen])
        del buf[:msglen]
        self.need_valid = False
        if (seq & 0x0f) != self.next_seq:
            self.counters["naks"] += 1
            self.send_block([])  # nak: the sequence number expected
            return msglen
        self.next_seq = (self.next_seq + 1) & 0x0f
        self.counters["blocks_in"] += 1
        self._dispatch(block)
        self.send_block([])  # ack
        return msglen

    def _error(self) -> int:
        self.counters["bad_blocks"] += 1
        if self.rx[0] == MESSAGE_SYNC:
            del self.rx[:1]
            return 1
        self.need_sync = True
        return self._resync()

    def _resync(self) -> int:
        i = self.rx.find(bytes([MESSAGE_SYNC]))
        n = len(self.rx) if i < 0 else i + 1
        del self.rx[:n]
        if i >= 0:
            self.need_sync = False
        if not self.need_valid:
            self.need_valid = True
            self.send_block([])  # nak
        return n

    def _dispatch(self, block: bytes) -> None:
        pos, end = 2, len(block) - 3
        while pos < end:
            msgid = block[pos]
            mid = self.parser.messages_by_id.get(msgid)
            if mid is None:
                self.log.error("UNHANDLED command id %d in block %s", msgid, block.hex())
                self.unhandled["id%d" % msgid] = self.unhandled.get("id%d" % msgid, 0) + 1
                return
            params, pos = mid.parse(block, pos)
            name = mid.name
            if self.shutdown_reason is not None and name not in IN_SHUTDOWN:
                self.send("is_shutdown", static_string_id=self.shutdown_reason)
                continue
            handler = self.handlers.get(name)
            if handler is None:
                self.log.error("UNHANDLED command %s %s", name, params)
                self.unhandled[name] = self.unhandled.get(name, 0) + 1
                continue
            try:
                handler(params)
            except Exception:
                self.log.exception("command %s %s failed", name, params)
                self.unhandled[name] = self.unhandled.get(name, 0) + 1

    # ---------------------------------------------------------- shutdown
    def shutdown(self, reason: str) -> None:
        if self.shutdown_reason is not None:
            return
        self.log.warning("shutdown: %s", reason)
        self.shutdown_reason = reason
        self.generation += 1
        for o in self.oids.values():
            if o["type"] == "digital_out":
                self.world.set_duty(o["pin"], float(o["default"]))
            elif o["type"] == "stepper":
                o["obj"].stop(self.clock())
        self.send("shutdown", clock=self.clock() & 0xffffffff, static_string_id=reason)

    # ---------------------------------------------------------- control
    def control_request(self, req: Dict[str, Any]) -> Dict[str, Any]:
        op = req.get("op")
        if op == "status":
            return {"ok": True, "name": self.name, "is_config": self.is_config,
                    "shutdown": self.shutdown_reason, "unhandled": self.unhandled,
                    "faults": self.faults, "counters": self.counters,
                    "temperatures": {sec: round(self.world.temperature(sec), 2)
                                     for sec, _t, _s in self.world.sensors.values()}}
        if op == "clear":
            self.faults = {}
            self.world.faults = {}
            for body in self.world.bodies.values():
                body.disconnected = False
            return {"ok": True}
        if op == "hold":
            sensor = req.get("sensor")
            if sensor not in [s for s, _t, _o in self.world.sensors.values()]:
                return {"ok": False, "error": "no thermistor %r on %s" % (sensor, self.name)}
            if req.get("temp") is None:
                self.world.held.pop(sensor, None)
            else:
                self.world.held[sensor] = float(req["temp"])
            return {"ok": True}
        if op == "fault":
            kind = req.get("fault")
            if kind in ("corrupt", "drop"):
                self.faults[kind] = float(req.get("rate", 0.2))
            elif kind == "mute":
                self.faults["mute"] = True
            elif kind in ("open", "short"):
                sensor = req["sensor"]
                if sensor not in [s for s, _t, _o in self.world.sensors.values()]:
                    return {"ok": False, "error": "no thermistor %r on %s" % (sensor, self.name)}
                self.world.faults[sensor] = kind
            elif kind == "heater_disconnect":
                body = self.world.bodies.get(req["heater"])
                if body is None:
                    return {"ok": False, "error": "no heater %r on %s" % (req["heater"], self.name)}
                body.disconnected = True
            elif kind == "late":
                self.add_timer(time.monotonic(), lambda: self._stall(float(req.get("seconds", 0.2))))
            else:
                return {"ok": False, "error": "unknown fault %r" % (kind,)}
            self.log.warning("fault injected: %s", req)
            return {"ok": True}
        return {"ok": False, "error": "unknown op %r" % (op,)}

    def _stall(self, seconds: float) -> None:
        """Block the scheduler as a runaway interrupt would.  Timers then wake behind
        their deadlines; like src/sched.c, a timer more than TIMER_LATE behind shuts the
        MCU down with "Timer too close" (checked here only: the simulator's ordinary
        jitter on a loaded host is not a fault)."""
        time.sleep(seconds)
        now = time.monotonic()
        if self.is_config and any(now - when > TIMER_LATE for when, _s, _f in self.timers):
            self.shutdown("Timer too close")

    # ------------------------------------------------------- basecmd.c
    def cmd_identify(self, p):
        off, count = p["offset"], p["count"]
        self.send("identify_response", offset=off,
                  data=self.identify_data[off:off + count])

    def cmd_get_uptime(self, p):
        c = self.clock()
        self.send("uptime", high=c >> 32, clock=c & 0xffffffff)

    def cmd_get_clock(self, p):
        self.send("clock", clock=self.clock() & 0xffffffff)

    def cmd_get_config(self, p):
        self.send("config", is_config=self.is_config, crc=self.config_crc,
                  is_shutdown=int(self.shutdown_reason is not None), move_count=1024)

    def cmd_allocate_oids(self, p):
        self.oids = {}

    def cmd_finalize_config(self, p):
        self.config_crc = p["crc"]
        self.is_config = 1

    def cmd_emergency_stop(self, p):
        self.shutdown("Command request")

    def cmd_clear_shutdown(self, p):
        if self.shutdown_reason is None:
            self.shutdown("Shutdown cleared when not shutdown")
            return
        self.shutdown_reason = None

    def cmd_reset(self, p):
        self.log.info("reset: rebooting")
        self.world = self.world.rewired(self.axis_positions(self.clock()))
        self.boot()

    def cmd_debug_nop(self, p):
        pass

    def cmd_debug_ping(self, p):
        self.send("pong", data=p["data"])

    def cmd_debug_read(self, p):
        self.send("debug_result", val=world_mod.DEBUG_MEMORY.get(p["addr"], 0))

    def cmd_debug_write(self, p):
        pass

    # ------------------------------------------------------ gpiocmds.c
    def cmd_config_digital_out(self, p):
        self.oids[p["oid"]] = {"type": "digital_out", "pin": p["pin"], "cycle": 0,
                               "default": p["default_value"], "value": p["value"]}
        self.world.set_duty(p["pin"], float(p["value"]))

    def cmd_set_digital_out_pwm_cycle(self, p):
        self.oids[p["oid"]]["cycle"] = p["cycle_ticks"]

    def cmd_update_digital_out(self, p):
        o = self.oids[p["oid"]]
        self.world.set_duty(o["pin"], float(bool(p["value"])))

    def cmd_queue_digital_out(self, p):
        o = self.oids[p["oid"]]
        cycle, on = o["cycle"], p["on_ticks"]
        duty = min(1.0, on / cycle) if cycle else float(bool(on))
        when = self.clock_to_time(self.clock64(p["clock"]))
        self.add_timer(when, lambda: self.world.set_duty(o["pin"], duty), generational=True)

    def cmd_set_digital_out(self, p):
        self.world.set_duty(p["pin"], float(bool(p["value"])))

    # ------------------------------------------------------- pwmcmds.c
    def cmd_config_pwm_out(self, p):
        self.oids[p["oid"]] = {"type": "digital_out", "pin": p["pin"], "cycle": 0,
                               "default": p["default_value"] / 255., "value": p["value"]}
        self.world.set_duty(p["pin"], p["value"] / 255.)

    def cmd_queue_pwm_out(self, p):
        o = self.oids[p["oid"]]
        duty = p["value"] / 255.
        when = self.clock_to_time(self.clock64(p["clock"]))
        self.add_timer(when, lambda: self.world.set_duty(o["pin"], duty), generational=True)

    def cmd_set_pwm_out(self, p):
        self.world.set_duty(p["pin"], p["value"] / 255.)

    # -------------------------------------------------------- adccmds.c
    def cmd_config_analog_in(self, p):
        self.oids[p["oid"]] = {"type": "adc", "pin": p["pin"], "bad": 0}

    def cmd_query_analog_in(self, p):
        o = self.oids[p["oid"]]
        o.update(p)
        if not p["sample_count"]:
            return
        o["next"] = self.clock64(p["clock"])
        self._schedule_adc(p["oid"])

    def _schedule_adc(self, oid: int) -> None:
        o = self.oids[oid]
        when = self.clock_to_time(o["next"] + o["sample_ticks"] * o["sample_count"])
        self.add_timer(when, lambda: self._adc_sample(oid, o), generational=True)

    def _adc_sample(self, oid: int, o: Dict[str, Any]) -> None:
        if self.oids.get(oid) is not o or not o["sample_count"]:
            return
        if o["pin"] not in self.world.sensors and o["pin"] != "ADC_TEMPERATURE":
            self.log.error("UNHANDLED analog pin %s: nothing wired to it in the config",
                           o["pin"])
            self.unhandled["adc " + o["pin"]] = 1
        frac = self.world.adc_fraction(o["pin"], self.mcu_type)
        # the sum of sample_count conversions of a slightly noisy signal
        n = o["sample_count"]
        value = int(round(max(0.0, min(1.0, frac)) * self.adc_max * n + random.gauss(0, 0.3)))
        value = max(0, min(self.adc_max * n, value))
        o["next"] += o["rest_ticks"]
        if value < o["min_value"] or value > o["max_value"]:
            o["bad"] += 1
            if o["bad"] >= o["range_check_count"]:
                self.shutdown("ADC out of range")
                return
        else:
            o["bad"] = 0
        self.send("analog_in_state", oid=oid, next_clock=o["next"] & 0xffffffff, value=value)
        self._schedule_adc(oid)

    # -------------------------------------------------------- stepper.c
    def cmd_config_stepper(self, p):
        axis = self.world.axes.get(p["step_pin"])
        self.oids[p["oid"]] = {"type": "stepper", "obj": Stepper(p["oid"]), "axis": axis}

    def cmd_queue_step(self, p):
        s = self.oids[p["oid"]]["obj"]
        s.queue(p["interval"], p["count"], p["add"], self.clock64)
        if len(s.segments) > 64:
            s.fold(self.clock())

    def cmd_set_next_step_dir(self, p):
        self.oids[p["oid"]]["obj"].dir = p["dir"]

    def cmd_reset_step_clock(self, p):
        self.oids[p["oid"]]["obj"].reset_clock(p["clock"])

    def cmd_stepper_get_position(self, p):
        s = self.oids[p["oid"]]["obj"]
        self.send("stepper_position", oid=p["oid"], pos=s.position(self.clock()))

    def cmd_stepper_stop_on_trigger(self, p):
        self.oids[p["oid"]]["obj"].trsync = p["trsync_oid"]

    def axis_positions(self, clock: int) -> Dict[str, float]:
        pos = {}
        for o in self.oids.values():
            if o["type"] == "stepper" and o["axis"] is not None:
                pos[o["axis"].section] = o["axis"].position(o["obj"].position(clock))
        return pos

    # ------------------------------------------------ endstop.c / trsync.c
    def cmd_config_endstop(self, p):
        if p["pin"] not in self.world.endstops:
            self.log.error("UNHANDLED endstop pin %s: not wired in the config", p["pin"])
            self.unhandled["config_endstop"] = self.unhandled.get("config_endstop", 0) + 1
        self.oids[p["oid"]] = {"type": "endstop", "pin": p["pin"], "homing": 0,
                               "rest_ticks": 0, "trig_clock": None}

    def _pin_level(self, pin: str, clock: int) -> int:
        if pin not in self.world.endstops:
            return 0
        trig = self.world.endstop_triggered(pin, self.axis_positions(clock))
        return int(trig ^ self.world.endstops[pin].inverted)

    def cmd_endstop_home(self, p):
        o = self.oids[p["oid"]]
        o.update(homing=int(bool(p["sample_count"])), pin_value=p["pin_value"],
                 trsync_oid=p["trsync_oid"], reason=p["trigger_reason"],
                 rest_ticks=p["rest_ticks"])
        if o["homing"]:
            o["checked"] = self.clock64(p["clock"])
            self.add_timer(time.monotonic() + 0.002, lambda: self._endstop_check(o),
                           generational=True)

    def _endstop_check(self, o: Dict[str, Any]) -> None:
        if not o["homing"]:
            return
        now = self.clock()
        start = o["checked"]
        if now > start and self._pin_level(o["pin"], now) == o["pin_value"]:
            lo, hi = start, now  # first clock the switch reads triggered
            while hi - lo > 1000:
                mid = (lo + hi) // 2
                if self._pin_level(o["pin"], mid) == o["pin_value"]:
                    hi = mid
                else:
                    lo = mid
            o["homing"] = 0
            o["trig_clock"] = hi
            self.log.info("endstop %s triggered at clock %d (armed at %d): %s", o["pin"], hi,
                          start, self.axis_positions(hi))
            self._trsync_trigger(o["trsync_oid"], o["reason"], hi)
            return
        o["checked"] = max(start, now)
        self.add_timer(time.monotonic() + 0.002, lambda: self._endstop_check(o),
                       generational=True)

    def cmd_endstop_query_state(self, p):
        o = self.oids[p["oid"]]
        now = self.clock()
        nxt = o["trig_clock"] + o["rest_ticks"] if o["trig_clock"] is not None else now
        self.send("endstop_state", oid=p["oid"], homing=o["homing"],
                  next_clock=nxt & 0xffffffff, pin_value=self._pin_level(o["pin"], now))

    def cmd_config_trsync(self, p):
        self.oids[p["oid"]] = {"type": "trsync", "can_trigger": 0, "reason": 0,
                               "timeout": None, "report_ticks": 0, "trigger_clock": 0}

    def cmd_trsync_start(self, p):
        t = self.oids[p["oid"]]
        t.update(can_trigger=1, reason=0, timeout=None, expire_reason=p["expire_reason"],
                 report_ticks=p["report_ticks"], run=t.get("run", 0) + 1)
        if p["report_ticks"]:
            run = t["run"]
            first = self.clock64(p["report_clock"])
            self.add_timer(self.clock_to_time(first), lambda: self._trsync_report(t, run, first),
                           generational=True)

    def _trsync_report(self, t, run, clock) -> None:
        if t["run"] != run or not t["can_trigger"]:
            return
        if t["timeout"] is not None and self.clock() > t["timeout"]:
            self._trsync_trigger(self._oid_of(t), t["expire_reason"], self.clock())
            return
        self.send("trsync_state", oid=self._oid_of(t), can_trigger=1, trigger_reason=0,
                  clock=self.clock() & 0xffffffff)
        nxt = clock + t["report_ticks"]
        self.add_timer(self.clock_to_time(nxt), lambda: self._trsync_report(t, run, nxt),
                       generational=True)

    def _oid_of(self, obj) -> int:
        return next(oid for oid, o in self.oids.items() if o is obj)

    def cmd_trsync_set_timeout(self, p):
        t = self.oids[p["oid"]]
        t["timeout"] = self.clock64(p["clock"])
        run = t.get("run", 0)

        def expire():
            if t.get("run") == run and t["can_trigger"] and t["timeout"] is not None \
                    and self.clock() >= t["timeout"]:
                self._trsync_trigger(p["oid"], t["expire_reason"], self.clock())
        self.add_timer(self.clock_to_time(t["timeout"]) + 0.001, expire, generational=True)

    def cmd_trsync_trigger(self, p):
        t = self.oids[p["oid"]]
        if t["can_trigger"]:
            self._trsync_trigger(p["oid"], p["reason"], self.clock(), report=False)
        self.send("trsync_state", oid=p["oid"], can_trigger=t["can_trigger"],
                  trigger_reason=t["reason"], clock=t["trigger_clock"] & 0xffffffff)

    def _trsync_trigger(self, oid: int, reason: int, clock: int, report: bool = True) -> None:
        t = self.oids[oid]
        if not t["can_trigger"]:
            return
        t.update(can_trigger=0, reason=reason, trigger_clock=clock)
        for o in self.oids.values():
            if o["type"] == "stepper" and o["obj"].trsync == oid:
                o["obj"].stop(clock)
                o["obj"].trsync = None
            if o["type"] == "endstop" and o.get("trsync_oid") == oid:
                o["homing"] = 0
        if report:
            self.send("trsync_state", oid=oid, can_trigger=0, trigger_reason=reason,
                      clock=clock & 0xffffffff)

    # -------------------------------------------------------- buttons.c
    def cmd_config_buttons(self, p):
        self.oids[p["oid"]] = {"type": "buttons", "pins": [], "acked": 0, "pending": []}

    def cmd_buttons_add(self, p):
        self.oids[p["oid"]]["pins"].append(p["pin"])

    def cmd_buttons_query(self, p):
        b = self.oids[p["oid"]]
        state = 0
        for i, pin in enumerate(b["pins"]):
            state |= int(self.world.buttons.get(pin, False)) << i
        state ^= p["invert"]
        if state:  # pins start released: report the pressed ones
            b["pending"].append(state)
        b["retransmit"] = p["rest_ticks"] * p["retransmit_count"]
        self._buttons_report(p["oid"], b)

    def _buttons_report(self, oid: int, b) -> None:
        if not b["pending"] or self.oids.get(oid) is not b:
            return
        self.send("buttons_state", oid=oid, ack_count=b["acked"] & 0xff,
                  state=bytes(b["pending"]))
        self.add_timer(time.monotonic() + max(0.05, b["retransmit"] / self.freq),
                       lambda: self._buttons_report(oid, b), generational=True)

    def cmd_buttons_ack(self, p):
        b = self.oids[p["oid"]]
        b["acked"] += p["count"]
        del b["pending"][:p["count"]]

    # --------------------------------------------------- pulse_counter.c
    def cmd_config_counter(self, p):
        self.oids[p["oid"]] = {"type": "counter", "pin": p["pin"], "count": 0.0}

    def cmd_query_counter(self, p):
        c = self.oids[p["oid"]]
        # the firmware polls the pin every poll_ticks and reports every sample_ticks
        c.update(poll=p["poll_ticks"], sample=p["sample_ticks"], next=self.clock64(p["clock"]))
        self.add_timer(self.clock_to_time(c["next"]), lambda: self._counter(p["oid"], c),
                       generational=True)

    def _counter(self, oid, c) -> None:
        if self.oids.get(oid) is not c:
            return
        rpm = self.world.fan_rpm(c["pin"])
        # Klippy: rpm = edges per second * 30 / ppr (ppr 2: 4 edges per revolution)
        c["count"] += rpm / 30. * 2 * c["sample"] / self.freq
        self.send("counter_state", oid=oid, next_clock=(c["next"] + c["poll"]) & 0xffffffff,
                  count=int(c["count"]) & 0xffffffff, count_clock=c["next"] & 0xffffffff)
        c["next"] += c["sample"]
        self.add_timer(self.clock_to_time(c["next"]), lambda: self._counter(oid, c),
                       generational=True)

    # ------------------------------------------------------- i2ccmds.c
    def cmd_config_i2c(self, p):
        self.oids[p["oid"]] = {"type": "i2c", "addr": None}

    def cmd_i2c_set_bus(self, p):
        self.oids[p["oid"]]["addr"] = p["address"]

    def cmd_i2c_set_software_bus(self, p):
        self.oids[p["oid"]]["addr"] = p["address"]

    def _i2c_dev(self, oid: int):
        addr = self.oids[oid]["addr"]
        dev = self.world.i2c.get(addr)
        if dev is None:
            self.log.error("UNHANDLED i2c address %s", addr)
            self.unhandled["i2c"] = self.unhandled.get("i2c", 0) + 1
        return dev

    def cmd_i2c_write(self, p):
        dev = self._i2c_dev(p["oid"])
        if dev is not None:
            dev.write(bytes(p["data"]), self.world.sim_time)

    def cmd_i2c_read(self, p):
        dev = self._i2c_dev(p["oid"])
        data = dev.read(bytes(p["reg"]), p["read_len"]) if dev else bytes(p["read_len"])
        self.send("i2c_read_response", oid=p["oid"], response=data)

    def cmd_i2c_modify_bits(self, p):
        dev = self._i2c_dev(p["oid"])
        if dev is not None:
            reg = bytes(p["reg"])
            bits = bytes(p["clear_set_bits"])
            half = len(bits) // 2
            cur = dev.read(reg, half)
            new = bytes((c & ~bits[i]) | bits[half + i] for i, c in enumerate(cur))
            dev.write(reg + new, self.world.sim_time)

    # ------------------------------------------------------- tmcuart.c
    def cmd_config_tmcuart(self, p):
        self.oids[p["oid"]] = {"type": "tmcuart", "dev": world_mod.TMCUart()}

    def cmd_tmcuart_send(self, p):
        dev = self.oids[p["oid"]]["dev"]
        self.send("tmcuart_response", oid=p["oid"], read=dev.transfer(bytes(p["write"]), p["read"]))

    # ------------------------------------------------------ neopixel.c
    def cmd_config_neopixel(self, p):
        self.oids[p["oid"]] = {"type": "neopixel", "data": bytearray(p["data_size"])}

    def cmd_neopixel_update(self, p):
        d = self.oids[p["oid"]]["data"]
        d[p["pos"]:p["pos"] + len(p["data"])] = bytes(p["data"])

    def cmd_neopixel_send(self, p):
        self.send("neopixel_result", oid=p["oid"], success=1)


def control(path: str, timeout: float = 5.0, **request: Any) -> Dict[str, Any]:
    """Send one control request to a running simulated MCU; return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="mcu")
    ap.add_argument("--dict", required=True, help="data dictionary (mcu_dict.py output)")
    ap.add_argument("--config", required=True, help="printer config Klippy reads")
    ap.add_argument("--serial", required=True, help="path to link to the pty")
    ap.add_argument("--control", default=None, help="Unix socket for the control interface")
    ap.add_argument("--klippy-dir", default=None, help="directory holding Klippy's msgproto.py")
    ap.add_argument("--time-factor", type=float, default=1.0,
                    help="thermal time runs this many times faster than wall-clock time")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with open(args.dict, encoding="utf-8") as f:
        dictionary = json.load(f)
    msgproto = import_msgproto(args.klippy_dir)
    world = world_mod.World(args.config, args.name, args.time_factor)
    fw = Firmware(args.name, dictionary, world, msgproto, args.serial, args.control)
    logging.info("simulated MCU %s on %s (pty %s)", args.name, args.serial, os.ttyname(fw.slave))
    try:
        fw.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
