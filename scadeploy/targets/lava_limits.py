"""Loihi 2's fixed-point limits as Lava declares them: the one home of every bound that the [lava]
target table, the quantizer, the netx writer and reader, the readout and the emulator use.

It lives beside the target files rather than under `backends/lava/` because the [lava] table is
checked against these widths when a target file is read, and `targets` sits below `backends`.

Read from lava-nc and lava-dl (the versions in constraints.txt):
- `lava/proc/lif/models.py` (the fixed_pt LIF): u and v are signed 24-bit (`uv_bitwidth = 24`);
  `bias_mant` is a signed 13-bit integer (-4096..4095); `vth` is an unsigned 17-bit integer
  (0..131071); bias and threshold enter the state shifted left by 6 (`bias_exp` 6, `vth_shift` 6);
  `du`/`dv` are decays in units of 1/4096 (4096: the whole state decays in one step).
- `lava/proc/dense/models.py`: 8-bit weights. lava-dl `netx/utils.py::optimize_weight_bits` holds
  mixed-sign weights in -256..254 and clips anything wider, so |w| <= 254 is the symmetric range.
- a graded message is a 24-bit payload: a value of 23 bits and a sign.
- netx hands conv `groups` to Lava as int8: at most 127.
NOTE: lava-dl netx's own default integrator threshold, `1 << 18 - 1`, is `1 << 17` in Python: one
past the 17-bit register. scadeploy never writes more than VTH_MAX (see `READOUT_VTH` in `net.py`).
"""

from __future__ import annotations

WEIGHT_BITS = 8  # synaptic weights
BIAS_BITS = 13  # signed bias mantissa
VTH_BITS = 17  # unsigned threshold mantissa vThMant
STATE_BITS = 24  # signed current u and voltage v
INPUT_BITS = STATE_BITS - 1  # a graded input message: value bits, the sign is the 24th
MANT_SHIFT = 6  # bias and threshold mantissas are compared with u and v shifted left by this
MANT_UNIT = 1 << MANT_SHIFT  # one weight unit in u and v
DECAY_ONE = 1 << 12  # du, dv in units of 1/4096
MAX_GROUPS = 127  # conv groups netx can pass to Lava (int8)
MAX_DELAY = 62  # extra steps of synaptic delay a model.net may hold


def weight_max(bits: int) -> int:
    """Largest |w| of `bits`-bit weights: 2^bits - 2 (254 at 8 bits, netx's symmetric range)."""
    return (1 << bits) - 2


def signed_max(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def unsigned_max(bits: int) -> int:
    return (1 << bits) - 1


def activation_max(state_bits: int) -> int:
    """Largest synaptic input a (in weight units) whose `a << MANT_SHIFT` fits the signed state."""
    return signed_max(state_bits - MANT_SHIFT)


WEIGHT_MAX = weight_max(WEIGHT_BITS)  # 254
BIAS_MAX = signed_max(BIAS_BITS)  # 4095
VTH_MAX = unsigned_max(VTH_BITS)  # 131071
INPUT_MAX = unsigned_max(INPUT_BITS)  # 2^23 - 1
STATE_WRAP = 1 << (STATE_BITS - 1)  # 2^23: u wraps at +-2^23, v clips to +-(2^23 - 1)
