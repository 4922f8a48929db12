"""Int8 mobile deployment: post-training quantization, `.ember` export and the interpreter.

    >>> import mobile                                                       # doctest: +SKIP
    >>> qnet = mobile.quantize(net, calibration_feeds, method="percentile")  # doctest: +SKIP
    >>> mobile.export(qnet, "model.ember")                                   # doctest: +SKIP
    >>> mobile.Interpreter("model.ember").run({"x": x})                     # doctest: +SKIP
"""
from mobile.export import Interpreter, export
from mobile.quantize import (calibrate, format_report, output_sqnr, quantization_table, quantize,
                             quantize_weight, sqnr_report)

__all__ = ["quantize", "calibrate", "quantize_weight", "sqnr_report", "format_report", "output_sqnr",
           "quantization_table", "export", "Interpreter"]
