"""The physical printer behind the simulated MCUs: heat, motion, switches and chips.

The firmware (simulator/firmware.py) only knows pins, oids and clocks, as a real
micro-controller does.  What is wired to each pin comes from the printer config
Klippy itself reads (the rendered printer.cfg): a ``heater_pin`` drives a thermal
body whose temperature the ``sensor_pin`` thermistor reports, an ``endstop_pin``
closes when its axis reaches ``position_endstop``, the probe touches a slightly
bowed bed, a BME280 answers on its I2C address, TMC2209 drivers answer on their
UART pin.  Only the sections of one MCU are modelled by each process.

Units: temperatures in degC, powers in W, heat capacities in J/K, times in
seconds of simulated time (``time_factor`` times wall-clock time), distances in mm.
Pure standard library; Python 3.9+.
"""
from __future__ import annotations

import configparser
import math
import random
from typing import Dict, List, Optional, Tuple

KELVIN = 273.15
AMBIENT = 24.0

# Thermistor calibration points (degC, ohm) as in Klippy's temperature_sensors.cfg
THERMISTORS: Dict[str, Tuple[float, float, float, float, float, float]] = {
    "EPCOS 100K B57560G104F": (25., 100000., 150., 1641.9, 250., 226.15),
    "Generic 3950": (25., 100000., 150., 1770., 250., 230.),
    "ATC Semitec 104GT-2": (20., 126800., 150., 1360., 300., 80.65),
    "NTC 100K MGB18-104F39050L32": (25., 100000., 150., 1641.9, 250., 226.15),
}

# Thermal bodies: (heater power W, heat capacity J/K, loss to ambient W/K)
HOTEND = (60.0, 10.0, 0.12)
BED = (300.0, 200.0, 1.6)


class Thermistor:
    """Steinhart-Hart NTC behind a pullup: temperature -> ADC fraction (0..1)."""

    def __init__(self, sensor_type: str, pullup: float = 4700., inline: float = 0.):
        if sensor_type not in THERMISTORS:
            raise ValueError("simulator has no thermistor model for %r" % (sensor_type,))
        t1, r1, t2, r2, t3, r3 = THERMISTORS[sensor_type]
        inv = [1. / (t + KELVIN) for t in (t1, t2, t3)]
        ln = [math.log(r) for r in (r1, r2, r3)]
        ln3 = [v ** 3 for v in ln]
        inv12, inv13 = inv[0] - inv[1], inv[0] - inv[2]
        ln12, ln13 = ln[0] - ln[1], ln[0] - ln[2]
        c3 = (inv12 - inv13 * ln12 / ln13) / ((ln3[0] - ln3[1]) - (ln3[0] - ln3[2]) * ln12 / ln13)
        if c3 <= 0.:
            c3, c2 = 0., ln13 / inv13
            c2 = 1. / c2
        else:
            c2 = (inv12 - c3 * (ln3[0] - ln3[1])) / ln12
        self.c1 = inv[0] - c2 * ln[0] - c3 * ln3[0]
        self.c2, self.c3 = c2, c3
        self.pullup, self.inline = pullup, inline

    def adc(self, temp: float) -> float:
        """ADC fraction the sensor reads at ``temp`` degC."""
        target = 1. / (temp + KELVIN)
        lo, hi = -5.0, 25.0  # ln(ohm); 1/T decreases as ln R grows (NTC)
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.c1 + self.c2 * mid + self.c3 * mid ** 3 > target:
                hi = mid
            else:
                lo = mid
        r = math.exp(lo) + self.inline
        return r / (self.pullup + r)


class Body:
    """A first-order thermal mass heated by a PWM heater and cooled to ambient."""

    def __init__(self, name: str, power: float, capacity: float, loss: float,
                 temp: float = AMBIENT):
        self.name = name
        self.power, self.capacity, self.loss = power, capacity, loss
        self.temp = temp
        self.duty = 0.0
        self.fan = 0.0  # duty of a fan blowing on it (temperature_fan)
        self.disconnected = False

    def step(self, dt: float) -> None:
        heat = 0.0 if self.disconnected else self.power * self.duty
        loss = self.loss * (1.0 + 3.0 * self.fan) * (self.temp - AMBIENT)
        # integrate in short sub-steps so large time factors stay stable
        n = max(1, int(dt * self.loss * 4 / self.capacity) + 1)
        for _ in range(n):
            self.temp += (heat - loss) / self.capacity * (dt / n)
            loss = self.loss * (1.0 + 3.0 * self.fan) * (self.temp - AMBIENT)


class Drift:
    """A temperature that wanders slowly around ``base`` (no heater)."""

    def __init__(self, base: float, amplitude: float = 1.5, period: float = 600.):
        self.base, self.amplitude, self.period = base, amplitude, period
        self.phase = random.uniform(0, 2 * math.pi)

    def temp(self, t: float) -> float:
        return (self.base + self.amplitude * math.sin(2 * math.pi * t / self.period + self.phase)
                + random.gauss(0, 0.03))


def split_pin(desc: str) -> Tuple[str, str, bool]:
    """'^!toolboard:gpio5' -> ('toolboard', 'gpio5', inverted)."""
    desc = desc.strip()
    inverted = False
    while desc and desc[0] in "^~!":
        inverted ^= desc[0] == "!"
        desc = desc[1:].strip()
    chip, _, pin = desc.rpartition(":")
    return (chip or "mcu"), pin.strip(), inverted


def read_config(path: str) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(strict=False, inline_comment_prefixes=("#", ";"),
                                      interpolation=None)
    cp.optionxform = str  # type: ignore[assignment]
    with open(path, encoding="utf-8") as f:
        cp.read_file(f)
    return cp


class Axis:
    """One stepper's physical carriage: mm per MCU step and where it starts."""

    def __init__(self, section: str, step_distance: float, sign: int, start: float):
        self.section, self.step_distance, self.sign, self.start = section, step_distance, sign, start

    def position(self, steps: int) -> float:
        return self.start + self.sign * steps * self.step_distance


class Endstop:
    """A switch that closes when an axis (or the probe) reaches its trigger point."""

    def __init__(self, kind: str, axis: str, position: float, positive: bool, inverted: bool):
        self.kind, self.axis, self.position, self.positive = kind, axis, position, positive
        self.inverted = inverted


class World:
    """Everything wired to the pins of MCU ``mcu_name`` in printer config ``path``."""

    def __init__(self, path: str, mcu_name: str, time_factor: float = 1.0):
        self.path = path
        self.mcu_name = mcu_name
        self.time_factor = time_factor
        self.sim_time = 0.0
        self.mcu_temp = Drift(38.0 if mcu_name == "mcu" else 41.0, 1.0, 900.)
        self.bodies: Dict[str, Body] = {}            # section -> body
        self.heater_pins: Dict[str, Body] = {}       # pin -> body heated by it
        self.fan_pins: Dict[str, List[Body]] = {}    # pin -> bodies cooled by it
        self.sensors: Dict[str, Tuple[str, Thermistor, object]] = {}  # pin -> (section, ..)
        self.faults: Dict[str, str] = {}             # section -> 'open'|'short'
        self.held: Dict[str, float] = {}             # section -> degC its sensor reads
        self.axes: Dict[str, Axis] = {}              # step pin -> axis
        self.endstops: Dict[str, Endstop] = {}       # pin -> endstop
        self.buttons: Dict[str, bool] = {}           # pin -> raw level
        self.tach_pins: Dict[str, str] = {}          # tach pin -> fan pin
        self.duties: Dict[str, float] = {}           # pin -> last duty
        self.i2c: Dict[int, "BME280"] = {}
        self.uart_pins: List[str] = []
        self.probe: Optional[Tuple[float, float, float]] = None
        self._load(read_config(path))

    # ------------------------------------------------------------- wiring
    def _mine(self, desc: str) -> Optional[Tuple[str, bool]]:
        chip, pin, inv = split_pin(desc)
        return (pin, inv) if chip == self.mcu_name else None

    def _load(self, cp: configparser.RawConfigParser) -> None:
        for sec in cp.sections():
            opts = dict(cp.items(sec))
            kind = sec.split()[0]
            if "sensor_pin" in opts and "sensor_type" in opts:
                mine = self._mine(opts["sensor_pin"])
                if mine:
                    therm = Thermistor(opts["sensor_type"].strip(),
                                       float(opts.get("pullup_resistor", 4700)),
                                       float(opts.get("inline_resistor", 0)))
                    if "heater_pin" in opts or kind == "temperature_fan":
                        heated = "heater_pin" in opts
                        power, cap, loss = (BED if kind == "heater_bed" else HOTEND) \
                            if heated else (0.0, 200.0, 1.0)
                        body = Body(sec, power, cap, loss,
                                    AMBIENT if heated else AMBIENT + 18.0)
                        self.bodies[sec] = body
                        source: object = body
                        if heated:
                            hp = self._mine(opts["heater_pin"])
                            if hp:
                                self.heater_pins[hp[0]] = body
                        if kind == "temperature_fan":
                            fp = self._mine(opts["pin"])
                            if fp:
                                self.fan_pins.setdefault(fp[0], []).append(body)
                    else:
                        source = Drift(AMBIENT + random.uniform(1, 8))
                    self.sensors[mine[0]] = (sec, therm, source)
            if "tachometer_pin" in opts:
                tp, fp = self._mine(opts["tachometer_pin"]), self._mine(opts["pin"])
                if tp and fp:
                    self.tach_pins[tp[0]] = fp[0]
            if kind.startswith("stepper_") and "step_pin" in opts:
                sp, dp = self._mine(opts["step_pin"]), self._mine(opts["dir_pin"])
                if sp and dp:
                    full = float(opts.get("full_steps_per_rotation", 200))
                    dist = float(opts["rotation_distance"]) / (full * float(opts["microsteps"]))
                    axis = kind[len("stepper_"):]
                    start = {"x": 117.0, "y": 93.0}.get(axis[:1], 12.0)
                    if axis == "z1":
                        start += 0.35  # a gantry that is not level yet, for z_tilt
                    self.axes[sp[0]] = Axis(axis, dist, -1 if dp[1] else 1, start)
                    ep = opts.get("endstop_pin", "")
                    mine = self._mine(ep) if ep and "virtual_endstop" not in ep else None
                    if mine:
                        pos = float(opts.get("position_endstop", 0))
                        pmax = float(opts.get("position_max", 0))
                        positive = opts.get("homing_positive_dir", "").strip().lower() in (
                            "true", "1") or (pmax and pos >= pmax)
                        self.endstops[mine[0]] = Endstop("axis", axis, pos, bool(positive),
                                                         mine[1])
            if kind == "probe":
                mine = self._mine(opts["pin"])
                if mine:
                    self.probe = (float(opts.get("x_offset", 0)), float(opts.get("y_offset", 0)),
                                  float(opts.get("z_offset", 0)))
                    self.endstops[mine[0]] = Endstop("probe", "z", 0.0, False, mine[1])
            for key in ("switch_pin",):
                if key in opts and self._mine(opts[key]):
                    pin, inv = self._mine(opts[key])  # type: ignore[misc]
                    self.buttons[pin] = not inv  # filament present: switch closed
            if opts.get("sensor_type", "").strip() in ("BME280", "BMP280") and \
                    opts.get("i2c_mcu", "mcu").strip() == self.mcu_name:
                addr = int(opts.get("i2c_address", 118))
                self.i2c[addr] = BME280(Drift(AMBIENT + 4, 0.8, 1200.))
            if kind.startswith("tmc") and "uart_pin" in opts and self._mine(opts["uart_pin"]):
                self.uart_pins.append(self._mine(opts["uart_pin"])[0])  # type: ignore[index]

    def rewired(self, positions: Dict[str, float]) -> "World":
        """The same printer after a reboot: wiring re-read from the (possibly edited)
        config; heat and carriage positions (``positions``: axis -> mm) carry over."""
        new = World(self.path, self.mcu_name, self.time_factor)
        new.sim_time = self.sim_time
        new.held = {sec: t for sec, t in self.held.items()
                    if sec in [s for s, _t, _o in new.sensors.values()]}
        for section, body in new.bodies.items():
            if section in self.bodies:
                body.temp = self.bodies[section].temp
        for axis in new.axes.values():
            if axis.section in positions:
                axis.start = positions[axis.section]
        return new

    # ------------------------------------------------------------ physics
    def advance(self, wall_dt: float) -> None:
        dt = wall_dt * self.time_factor
        self.sim_time += dt
        for body in self.bodies.values():
            body.step(dt)

    def set_duty(self, pin: str, duty: float) -> None:
        self.duties[pin] = duty
        if pin in self.heater_pins:
            self.heater_pins[pin].duty = duty
        for body in self.fan_pins.get(pin, ()):
            body.fan = duty

    def temperature(self, section: str) -> float:
        for sec, _therm, source in self.sensors.values():
            if sec == section:
                return self._sensed(sec, source)
        raise KeyError(section)

    def _sensed(self, section: str, source: object) -> float:
        """What the sensor of ``section`` reads (degC): its held temperature if the
        control interface set one, else its body's or its drift's."""
        if section in self.held:
            return self.held[section]
        if isinstance(source, Body):
            return source.temp
        return source.temp(self.sim_time)  # type: ignore[attr-defined]

    def adc_fraction(self, pin: str, mcu_type: str) -> float:
        """What the ADC on ``pin`` reads (0..1 of ADC_MAX)."""
        if pin == "ADC_TEMPERATURE":
            t = self.mcu_temp.temp(self.sim_time)
            if mcu_type.startswith("stm32h723"):
                cal30, cal130 = STM32H723_CAL
                return (cal30 + (t - 30.) / 100. * (cal130 - cal30)) / 4095.
            return (0.706 - (t - 27.) * 0.001721) / 3.3  # rp2040 sensor
        if pin not in self.sensors:
            return 0.5
        section, therm, source = self.sensors[pin]
        fault = self.faults.get(section)
        if fault == "open":
            return 1.0
        if fault == "short":
            return 0.0
        return therm.adc(self._sensed(section, source))

    def fan_rpm(self, tach_pin: str) -> float:
        return 3000.0 * self.duties.get(self.tach_pins.get(tach_pin, ""), 0.0)

    # ------------------------------------------------------------- motion
    def bed_height(self, x: float, y: float) -> float:
        """Bed surface under (x, y): a gentle bow of about 0.1 mm and a small tilt."""
        return 0.06 * math.sin(math.pi * x / 250.) * math.sin(math.pi * y / 250.) + 0.0004 * y

    def endstop_triggered(self, pin: str, pos: Dict[str, float]) -> bool:
        """Switch state of endstop ``pin`` with the axes at ``pos`` (axis -> mm)."""
        es = self.endstops[pin]
        if es.kind == "probe":
            if self.probe is None or "z" not in pos:
                return False
            x = pos.get("x", 125.) + self.probe[0]
            y = pos.get("y", 125.) + self.probe[1]
            z = pos["z"]
            if "z1" in pos:  # the gantry rides on z (x=-30) and z1 (x=280)
                z = pos["z"] + (pos["z1"] - pos["z"]) * (x + 30.) / 310.
            return z <= self.bed_height(x, y) + self.probe[2]
        p = pos.get(es.axis)
        if p is None:
            return False
        return p >= es.position if es.positive else p <= es.position


STM32H723_CAL = (1060, 1380)  # ADC counts at 30 and 130 degC (debug_read 0x1FF1E820/840)
DEBUG_MEMORY = {0x1FF1E820: STM32H723_CAL[0], 0x1FF1E840: STM32H723_CAL[1]}


class BME280:
    """BME280 register file: chip id, the datasheet's calibration, live readings."""

    CAL_T = (27504, 26435, -1000)
    CAL_P = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
    CAL_H = (75, 362, 0, 324, 50, 30)

    def __init__(self, source: Drift):
        self.source = source
        self.regs = bytearray(256)
        self.regs[0xD0] = 0x60
        cal1 = bytearray()
        for i, v in enumerate(self.CAL_T + self.CAL_P):
            cal1 += (v & 0xffff).to_bytes(2, "little")
        cal1 += bytes([0, self.CAL_H[0]])  # 0xA0 unused, 0xA1 = H1
        self.regs[0x88:0x88 + len(cal1)] = cal1
        h2, h3, h4, h5, h6 = self.CAL_H[1:]
        cal2 = (h2 & 0xffff).to_bytes(2, "little") + bytes([
            h3, (h4 >> 4) & 0xff, (h4 & 0x0f) | ((h5 & 0x0f) << 4), (h5 >> 4) & 0xff, h6 & 0xff])
        self.regs[0xE1:0xE1 + len(cal2)] = cal2

    def _t_fine(self, adc_t: int) -> float:
        t1, t2, t3 = self.CAL_T
        v1 = (adc_t / 16384. - t1 / 1024.) * t2
        v2 = ((adc_t / 131072. - t1 / 8192.) ** 2) * t3
        return v1 + v2

    def _pressure(self, adc_p: int, t_fine: float) -> float:
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.CAL_P
        v1 = t_fine / 2. - 64000.
        v2 = v1 * v1 * p6 / 32768. + v1 * p5 * 2.
        v2 = v2 / 4. + p4 * 65536.
        v1 = (p3 * v1 * v1 / 524288. + p2 * v1) / 524288.
        v1 = (1. + v1 / 32768.) * p1
        p = 1048576. - adc_p
        p = (p - v2 / 4096.) * 6250. / v1
        return p + (p9 * p * p / 2147483648. + p * p8 / 32768. + p7) / 16.

    def _humidity(self, adc_h: int, t_fine: float) -> float:
        h1, h2, h3, h4, h5, h6 = self.CAL_H
        h = t_fine - 76800.
        h = (adc_h - (h4 * 64. + h5 / 16384. * h)) * (
            h2 / 65536. * (1. + h6 / 67108864. * h * (1. + h3 / 67108864. * h)))
        return h * (1. - h1 * h / 524288.)

    @staticmethod
    def _solve(func, target: float, lo: int, hi: int) -> int:
        increasing = func(hi) > func(lo)
        for _ in range(40):
            mid = (lo + hi) // 2
            if (func(mid) < target) == increasing:
                lo = mid
            else:
                hi = mid
        return lo

    def sample(self, t: float) -> None:
        """Latch a forced-mode measurement into the data registers."""
        temp = self.source.temp(t)
        adc_t = self._solve(lambda a: self._t_fine(a) / 5120., temp, 0, 1 << 20)
        tf = self._t_fine(adc_t)
        adc_p = self._solve(lambda a: self._pressure(a, tf), 100800. + 40 * math.sin(t / 300.),
                            0, 1 << 20)
        adc_h = self._solve(lambda a: self._humidity(a, tf), 41. + 3 * math.sin(t / 500.),
                            0, 1 << 16)
        for reg, val, bits in ((0xF7, adc_p, 20), (0xFA, adc_t, 20)):
            self.regs[reg:reg + 3] = bytes([(val >> 12) & 0xff, (val >> 4) & 0xff,
                                            (val & 0x0f) << 4])
        self.regs[0xFD:0xFF] = bytes([(adc_h >> 8) & 0xff, adc_h & 0xff])

    def write(self, data: bytes, t: float) -> None:
        if not data:
            return
        reg = data[0]
        for i, b in enumerate(data[1:]):
            self.regs[(reg + i) & 0xff] = b
        if reg == 0xF4 and len(data) > 1 and data[1] & 0x03:
            self.sample(t)  # forced mode: the measurement is ready at once

    def read(self, reg: bytes, length: int) -> bytes:
        start = reg[0] if reg else 0
        return bytes(self.regs[(start + i) & 0xff] for i in range(length))


class TMCUart:
    """TMC2209 on a single-wire UART: Klippy's bit-level frames in, answers out."""

    def __init__(self):
        self.regs: Dict[int, int] = {}
        self.ifcnt = 0

    @staticmethod
    def crc8(data: bytes) -> int:
        crc = 0
        for b in data:
            for _ in range(8):
                if (crc >> 7) ^ (b & 0x01):
                    crc = (crc << 1) ^ 0x07
                else:
                    crc = crc << 1
                crc &= 0xff
                b >>= 1
        return crc

    @staticmethod
    def add_serial_bits(data: bytes) -> bytes:
        out = pos = 0
        for d in data:
            out |= ((d << 1) | 0x200) << pos
            pos += 10
        return bytes((out >> (i * 8)) & 0xff for i in range((pos + 7) // 8))

    @staticmethod
    def strip_serial_bits(data: bytes) -> bytes:
        val = 0
        for i, d in enumerate(data):
            val |= d << (8 * i)
        return bytes((val >> (i * 10 + 1)) & 0xff for i in range(len(data) * 8 // 10))

    def transfer(self, write: bytes, read_len: int) -> bytes:
        msg = self.strip_serial_bits(write)
        if len(msg) >= 8 and msg[2] & 0x80 and self.crc8(msg[:7]) == msg[7]:
            reg = msg[2] & 0x7f
            self.regs[reg] = int.from_bytes(msg[3:7], "big")
            self.ifcnt = (self.ifcnt + 1) & 0xff
            return b""
        if len(msg) >= 4 and self.crc8(msg[:3]) == msg[3] and read_len:
            reg = msg[2] & 0x7f
            val = self.ifcnt if reg == 0x02 else self.regs.get(reg, 0)
            if reg == 0x06:  # IOIN: VERSION 0x21 in bits 24..31
                val = 0x21 << 24
            frame = bytes([0x05, 0xff, reg]) + val.to_bytes(4, "big")
            return self.add_serial_bits(frame + bytes([self.crc8(frame)]))
        return b""
