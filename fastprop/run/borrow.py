"""Arrays borrowed by compiled loops: no reference counting in the hot path.

Numba counts references to every array (an atomic increment and decrement of its
``meminfo``) each time a compiled function takes one out of a tuple or hands one
to a function it does not inline. A grid point reads a dozen table arrays through
several such calls, so on the mean-field grid these atomics were over half the
time of a point (measured with ``perf``: ``NRT_incref``/``NRT_decref``), and more
with threads, which share the counters' cache lines.

:func:`borrowed` gives views of the same memory without a ``meminfo``: Numba's
reference counting skips them (a null test). The caller must keep the original
arrays alive while the views are used; a function's arguments are (the caller
holds them for the call), so drivers borrow their arguments on entry.
"""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def borrowed(typingctx, arrays):
    """The array, or the tuple of arrays, ``arrays`` as views without reference counts
    (same type, same data, shape and strides; see the module docstring)."""
    if isinstance(arrays, types.Array):
        members = None
    elif isinstance(arrays, types.BaseTuple) and all(isinstance(t, types.Array) for t in arrays.types):
        members = arrays.types
    else:
        return None

    def unmanaged(context, builder, ty, value):
        a = context.make_array(ty)(context, builder, value=value)
        a.meminfo = cgutils.get_null_value(a.meminfo.type)
        a.parent = cgutils.get_null_value(a.parent.type)
        return a._getvalue()

    def codegen(context, builder, sig, args):
        if members is None:
            return unmanaged(context, builder, sig.args[0], args[0])
        out = args[0]
        for k, ty in enumerate(members):
            out = builder.insert_value(out, unmanaged(context, builder, ty, builder.extract_value(out, k)), k)
        return out

    return arrays(arrays), codegen
