import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from acapella.model.paths import default_data_root

DATA = default_data_root(beside=Path(__file__).resolve().parents[1])


@pytest.fixture(scope="session")
def separator():
    from acapella import Separator

    return Separator()


@pytest.fixture(scope="session")
def demo_stems():
    """A synthetic song (vocals, accompaniment), each (2, n) float32 at 44.1 kHz."""
    from acapella import demo

    return demo.song(6.0, 44100)


def noise(shape, seed=0, scale=0.1):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def db(err, ref):
    return 10 * np.log10((np.sum(np.square(err)) + 1e-30) / (np.sum(np.square(ref)) + 1e-30))


def acapella_command() -> list[str]:
    """The installed ``acapella`` console script, as a user (or an editor's script) runs it."""
    beside = Path(sys.executable).with_name("acapella")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("acapella")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from acapella.cli import main; sys.exit(main())"]


def acapella_executable() -> str:
    """The console script's path, for scripts that need one executable; skips when there is none."""
    cmd = acapella_command()
    if len(cmd) > 1:
        pytest.skip("the acapella console script is not installed (pip install .)")
    return cmd[0]


# A JSON writer for Lua (plain Lua and Ardour's), so that Lua-side results
# come back to the tests as JSON.
LUA_JSON = r"""
local function lit(v)
  if type(v) == "table" then
    local out = {}
    -- table.pack() results carry n, which also counts nils (failed calls
    -- return nil, message).
    local n = v.n or #v
    if n > 0 then
      for i = 1, n do out[#out + 1] = lit(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do out[#out + 1] = lit(tostring(k)) .. ":" .. lit(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  elseif type(v) == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif v == nil then
    return "null"
  end
  return tostring(v)
end
"""
