"""Drawing for render.py: Grafana's dark theme, its units, and panels as HTML with inline SVG
(time series as line charts, stat panels as big numbers with sparklines). Standard library only."""

import html
import math
import re
import time

GRID_COLUMNS = 24
CELL_HEIGHT = 30  # Grafana's grid: a row unit is 30 px high with 8 px between panels
CELL_MARGIN = 8
HEADER_HEIGHT = 92
FOOTER_HEIGHT = 40
PAD = 16

# Grafana's dark theme.
BG = "#111217"
PANEL_BG = "#181b1f"
BORDER = "rgba(204, 204, 220, 0.12)"
TEXT = "#ccccdc"
TEXT_WEAK = "rgba(204, 204, 220, 0.65)"
GRID_LINE = "rgba(204, 204, 220, 0.10)"
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0",
           "#37872D", "#FADE2A", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477"]
NAMED_COLORS = {
    "green": "#73BF69", "dark-green": "#37872D", "semi-dark-green": "#56A64B", "light-green": "#96D98D",
    "red": "#F2495C", "dark-red": "#C4162A", "semi-dark-red": "#E02F44", "light-red": "#FF7383",
    "orange": "#FF9830", "dark-orange": "#FA6400", "light-orange": "#FFB357",
    "yellow": "#FADE2A", "dark-yellow": "#E0B400", "light-yellow": "#FFEE52",
    "blue": "#5794F2", "dark-blue": "#1F60C4", "light-blue": "#8AB8FF",
    "purple": "#B877D9", "dark-purple": "#8F3BB8", "light-purple": "#CA95E5",
    "text": TEXT, "transparent": "transparent",
}
FONT = "Inter, 'Helvetica Neue', Helvetica, Arial, 'DejaVu Sans', sans-serif"


# ---------------------------------------------------------------------------------------------
# Units

SI = [(1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")]
SHORT = [(1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K")]
IEC_BYTES = [(2**50, " PiB"), (2**40, " TiB"), (2**30, " GiB"), (2**20, " MiB"), (2**10, " KiB")]
SI_BYTES = [(1e15, " PB"), (1e12, " TB"), (1e9, " GB"), (1e6, " MB"), (1e3, " kB")]
TIME_SCALES = [(31536000, " year"), (604800, " week"), (86400, " day"), (3600, " hour"), (60, " min"), (1, " s"),
               (0.001, " ms"), (1e-6, " µs"), (1e-9, " ns")]


def fmt_number(v, decimals):
    """Grafana's auto decimals (trailing zeros dropped) unless the panel sets them."""
    if decimals is not None:
        return f"{v:.{decimals}f}"
    a = abs(v)
    places = 0 if a >= 100 or a == int(a) else 1 if a >= 10 else 2 if a >= 1 else 3
    text = f"{v:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def scaled(v, scales, base_suffix, decimals):
    a = abs(v)
    for size, suffix in scales:
        if a >= size:
            return fmt_number(v / size, decimals) + suffix
    return fmt_number(v, decimals) + base_suffix


def scale_for(maximum, scales, base=1):
    for size, suffix in scales:
        if maximum >= size:
            return size, suffix
    return base, None


def format_value(v, unit, decimals=None):
    """A value as Grafana writes it in the unit (the common units; others as `short`)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    unit = unit or "short"
    if unit.startswith("suffix:"):
        return fmt_number(v, decimals) + unit[len("suffix:"):]
    if unit == "none":
        return fmt_number(v, decimals)
    if unit == "percentunit":
        return fmt_number(v * 100, decimals if decimals is not None else (0 if abs(v) >= 0.995 or v == 0 else 1)) + "%"
    if unit == "percent":
        return fmt_number(v, decimals) + "%"
    if unit == "bytes":
        return scaled(v, IEC_BYTES, " B", decimals)
    if unit == "decbytes":
        return scaled(v, SI_BYTES, " B", decimals)
    if unit == "binBps":
        return scaled(v, IEC_BYTES, " B", decimals) + "/s"
    if unit == "Bps":
        return scaled(v, SI_BYTES, " B", decimals) + "/s"
    if unit in ("s", "ms", "µs", "ns"):
        seconds = v * {"s": 1, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit]
        if seconds == 0:
            return "0" + (" s" if unit == "s" else " " + unit)
        return scaled(seconds, TIME_SCALES, " s", decimals)
    if unit == "ops":
        return scaled(v, SHORT, "", decimals) + " ops/s"
    if unit == "reqps":
        return scaled(v, SHORT, "", decimals) + " req/s"
    if unit == "dateTimeFromNow":
        return ago(v)
    return scaled(v, SHORT, "", decimals)


def ago(ts):
    d = ts - time.time()
    return ("in " if d > 0 else "") + format_value(abs(d), "s", 0) + ("" if d > 0 else " ago")


def axis_scale(unit, maximum):
    """(divisor, suffix formatter) so that a y axis's ticks are nice numbers in one scale."""
    unit = unit or "short"
    m = abs(maximum)
    if unit == "bytes" or unit == "binBps":
        size, suffix = scale_for(m, IEC_BYTES)
        suffix = suffix or " B"
        return size, suffix + ("/s" if unit == "binBps" else "")
    if unit == "decbytes" or unit == "Bps":
        size, suffix = scale_for(m, SI_BYTES)
        suffix = suffix or " B"
        return size, suffix + ("/s" if unit == "Bps" else "")
    if unit in ("s", "ms"):
        f = 1 if unit == "s" else 1e-3
        size, suffix = scale_for(m * f, TIME_SCALES)
        if suffix is None:
            size, suffix = 1e-9, " ns"
        return size / f, suffix
    if unit == "percentunit":
        return 0.01, "%"
    if unit == "percent":
        return 1, "%"
    size, suffix = scale_for(m, SHORT)
    suffix = suffix or ""
    if unit == "ops":
        suffix += " ops/s"
    elif unit == "reqps":
        suffix += " req/s"
    elif unit.startswith("suffix:"):
        suffix += unit[len("suffix:"):]
    return size, suffix


def nice_step(span, count):
    raw = span / max(count, 1)
    if raw <= 0:
        return 1
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def color_of(name, default=TEXT):
    if not name:
        return default
    return NAMED_COLORS.get(name, name)


# ---------------------------------------------------------------------------------------------
# Panels' data

def legend_of(fmt, metric, expr):
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)
    if not labels:
        return metric.get("__name__") or expr
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric.get('__name__', '')}{{{body}}}"


def to_float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")



def esc(s):
    return html.escape(str(s), quote=True)


def text_width(s, size=12):
    return len(s) * size * 0.56


def time_ticks(start, end, width_px):
    span = end - start
    want = max(2, int(width_px / 80))
    candidates = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    step = next((c for c in candidates if span / c <= want), 86400)
    offset = time.localtime(start).tm_gmtoff
    first = math.ceil((start + offset) / step) * step - offset
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m/%d"
    ticks = []
    t = first
    while t <= end:
        ticks.append((t, time.strftime(fmt, time.localtime(t))))
        t += step
    return ticks


def timeseries_svg(panel, series, start, end, step, width, height):
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit = defaults.get("unit", "short")
    decimals = defaults.get("decimals")
    line_width = custom.get("lineWidth", 1)
    fill = custom.get("fillOpacity", 0) / 100.0
    legend_opts = panel.get("options", {}).get("legend", {})
    show_legend = legend_opts.get("showLegend", True) and legend_opts.get("displayMode") != "hidden"
    calcs = legend_opts.get("calcs", [])

    finite = [v for _, pts in series for _, v in pts if math.isfinite(v)]
    lo = min(finite) if finite else 0.0
    hi = max(finite) if finite else 1.0
    if "axisSoftMin" in custom and custom["axisSoftMin"] is not None:
        lo = min(lo, custom["axisSoftMin"])
    if "axisSoftMax" in custom and custom["axisSoftMax"] is not None:
        hi = max(hi, custom["axisSoftMax"])
    if defaults.get("min") is not None:
        lo = defaults["min"]
    if defaults.get("max") is not None:
        hi = defaults["max"]
    if hi == lo:
        hi = lo + (abs(lo) if lo else 1)

    # Legend: items packed into lines.
    items = []
    for i, (name, pts) in enumerate(series):
        label = name
        vals = [v for _, v in pts if math.isfinite(v)]
        extra = []
        for c in calcs:
            if not vals:
                continue
            v = {"lastNotNull": vals[-1], "last": vals[-1], "max": max(vals), "min": min(vals), "mean": sum(vals) / len(vals)}.get(c)
            if v is not None:
                extra.append(f"{c.replace('NotNull', '')}: {format_value(v, unit, decimals)}")
        if extra:
            label += "  " + "  ".join(extra)
        items.append((PALETTE[i % len(PALETTE)], label))
    lines, cur, cur_w = [], [], 0.0
    avail = width - 8
    for color, label in items:
        w = 14 + text_width(label, 12) + 16
        if cur and cur_w + w > avail:
            lines.append(cur)
            cur, cur_w = [], 0.0
        cur.append((color, label, w))
        cur_w += w
    if cur:
        lines.append(cur)
    max_lines = max(1, int((height * 0.38) // 18))
    hidden = 0
    if len(lines) > max_lines:
        hidden = sum(len(line) for line in lines[max_lines - 1:])
        lines = lines[:max_lines - 1] + [[]]
    legend_h = (len(lines) * 18 + 2) if (show_legend and items) else 0

    # Axes.
    div, suffix = axis_scale(unit, max(abs(lo), abs(hi)))
    top, axis_h = 6, 20
    plot_h = height - top - axis_h - legend_h
    tick_step = nice_step((hi - lo) / div, max(2, int(plot_h / 45)))
    if decimals == 0 and div == 1:
        tick_step = max(1, math.ceil(tick_step))
    t0 = math.floor(lo / div / tick_step + 1e-9) * tick_step
    t1 = math.ceil(hi / div / tick_step - 1e-9) * tick_step
    ymin, ymax = t0 * div, t1 * div
    if ymax == ymin:
        ymax = ymin + tick_step * div
    ticks = []
    k = 0
    while t0 + k * tick_step <= t1 + 1e-9:
        ticks.append(t0 + k * tick_step)
        k += 1
    tick_decimals = len(f"{tick_step:.6f}".rstrip("0").split(".")[1])
    tick_labels = ["0" if abs(t) < tick_step / 1e6 else f"{t:.{tick_decimals}f}{suffix}" for t in ticks]
    left = max(text_width(lbl, 11) for lbl in tick_labels) + 10
    plot_w = width - left - 6

    def X(t):
        return left + (t - start) / (end - start) * plot_w

    def Y(v):
        v = min(max(v, ymin), ymax)
        return top + plot_h - (v - ymin) / (ymax - ymin) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" font-family="{esc(FONT)}">']
    for t, lbl in zip(ticks, tick_labels):
        y = Y(t * div)
        out.append(f'<line x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_LINE}"/>')
        out.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" fill="{TEXT_WEAK}" font-size="11" text-anchor="end">{esc(lbl)}</text>')
    for t, lbl in time_ticks(start, end, plot_w):
        x = X(t)
        if x + text_width(lbl, 11) / 2 > width or x - text_width(lbl, 11) / 2 < left - 6:
            continue  # a label that would stick out of the panel
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h:.1f}" stroke="{GRID_LINE}"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 15:.1f}" fill="{TEXT_WEAK}" font-size="11" text-anchor="middle">{esc(lbl)}</text>')
    base = Y(max(ymin, min(0, ymax)))
    for i, (name, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        segments, seg, last_t = [], [], None
        for t, v in pts:
            if not math.isfinite(v) or (last_t is not None and t - last_t > 2.5 * step):
                if seg:
                    segments.append(seg)
                seg = []
            if math.isfinite(v):
                seg.append((X(t), Y(v)))
            last_t = t
        if seg:
            segments.append(seg)
        for seg in segments:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in seg)
            if fill > 0 and len(seg) > 1:
                poly = f"{seg[0][0]:.1f},{base:.1f} {path} {seg[-1][0]:.1f},{base:.1f}"
                out.append(f'<polygon points="{poly}" fill="{color}" fill-opacity="{fill:.2f}" stroke="none"/>')
            if len(seg) == 1:
                out.append(f'<circle cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="{max(1.5, line_width)}" fill="{color}"/>')
            else:
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{line_width}" stroke-linejoin="round"/>')
    if not series:
        out.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" fill="{TEXT_WEAK}" font-size="14" text-anchor="middle">No data</text>')
    if show_legend and items:
        y = top + plot_h + axis_h
        for line in lines:
            x = 4
            if not line:
                out.append(f'<text x="{x}" y="{y + 13}" fill="{TEXT_WEAK}" font-size="12">+{hidden} more series</text>')
                continue
            for color, label, w in line:
                out.append(f'<rect x="{x}" y="{y + 7}" width="14" height="4" rx="1" fill="{color}"/>')
                out.append(f'<text x="{x + 19}" y="{y + 13}" fill="{TEXT}" font-size="12">{esc(label)}</text>')
                x += w
            y += 18
    out.append("</svg>")
    return "".join(out)


def reduce_last(points):
    for _, v in reversed(points):
        if math.isfinite(v):
            return v
    return None


def stat_color(defaults, value):
    for m in defaults.get("mappings", []):
        hit = mapping_hit(m, value)
        if hit and hit.get("color"):
            return color_of(hit["color"])
    color = defaults.get("color", {})
    if color.get("mode") == "fixed":
        return color_of(color.get("fixedColor"))
    steps = defaults.get("thresholds", {}).get("steps", [])
    chosen = TEXT
    for s in steps:
        if s.get("value") is None or (value is not None and value >= s["value"]):
            chosen = color_of(s.get("color"))
    return chosen


def mapping_hit(m, value):
    if value is None:
        return None
    if m.get("type") == "value":
        key = str(int(value)) if float(value).is_integer() else str(value)
        return m.get("options", {}).get(key)
    if m.get("type") == "range":
        o = m.get("options", {})
        if (o.get("from") is None or value >= o["from"]) and (o.get("to") is None or value <= o["to"]):
            return o.get("result")
    return None


def stat_text(defaults, value):
    for m in defaults.get("mappings", []):
        hit = mapping_hit(m, value)
        if hit and hit.get("text") is not None:
            return hit["text"]
    return format_value(value, defaults.get("unit", "short"), defaults.get("decimals"))


def stat_html(panel, series, width, height):
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    options = panel.get("options", {})
    mode = options.get("textMode", "auto")
    values = [(name, reduce_last(pts), pts) for name, pts in series]
    if not values:
        no_value = defaults.get("noValue", "No data")
        size = min(height * 0.42, width / max(4, len(no_value)) * 1.7)
        return f'<div class="stat-one" style="color:{TEXT_WEAK};font-size:{size:.0f}px">{esc(no_value)}</div>'
    if mode == "auto":
        mode = "value_and_name" if len(values) > 1 else "value"
    cells = []
    n = len(values)
    cell_w = width / n
    for name, value, pts in values:
        color = stat_color(defaults, value)
        text = name if mode == "name" else stat_text(defaults, value)
        label = name if mode == "value_and_name" else ""
        avail_h = height * (0.40 if label else 0.55)
        size = min(avail_h, cell_w / max(3, len(text)) * 1.75, 56)
        spark = ""
        if options.get("graphMode") == "area" and n == 1 and len(pts) > 1:
            spark = sparkline(pts, width, height * 0.45, color)
        name_html = f'<div class="stat-name" style="font-size:{max(11, min(14, size * 0.45)):.0f}px">{esc(label)}</div>' if label else ""
        value_html = f'<div class="stat-value" style="color:{color};font-size:{size:.0f}px">{esc(text)}</div>'
        cells.append(f'<div class="stat-cell">{spark}{name_html}{value_html}</div>')
    return f'<div class="stat-row">{"".join(cells)}</div>'


def sparkline(pts, width, height, color):
    vals = [(t, v) for t, v in pts if math.isfinite(v)]
    if len(vals) < 2:
        return ""
    lo = min(v for _, v in vals)
    hi = max(v for _, v in vals)
    if hi == lo:
        hi = lo + 1
    t0, t1 = vals[0][0], vals[-1][0]
    if t1 == t0:
        return ""
    xy = [((t - t0) / (t1 - t0) * width, height - (v - lo) / (hi - lo) * (height - 2) - 1) for t, v in vals]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    poly = f"0,{height:.1f} {path} {width:.1f},{height:.1f}"
    return (f'<svg class="spark" width="{width:.0f}" height="{height:.0f}" xmlns="http://www.w3.org/2000/svg">'
            f'<polygon points="{poly}" fill="{color}" fill-opacity="0.18"/>'
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-opacity="0.7" stroke-width="1"/></svg>')


CSS = f"""
* {{ box-sizing: border-box; }}
html, body {{ margin: 0; padding: 0; background: {BG}; color: {TEXT}; font-family: {FONT}; font-size: 13px; }}
.header {{ height: {HEADER_HEIGHT}px; padding: 12px {PAD}px 0; }}
.title {{ font-size: 20px; font-weight: 500; display: flex; align-items: center; gap: 10px; }}
.title .crumb {{ color: {TEXT_WEAK}; font-weight: 400; }}
.range {{ margin-left: auto; font-size: 13px; border: 1px solid {BORDER}; border-radius: 2px; padding: 5px 10px; background: {PANEL_BG}; }}
.vars {{ display: flex; gap: 8px; margin-top: 12px; }}
.var {{ display: flex; border: 1px solid {BORDER}; border-radius: 2px; overflow: hidden; height: 30px; }}
.var .k {{ background: #22252b; padding: 6px 10px; color: {TEXT}; font-weight: 500; }}
.var .v {{ background: {PANEL_BG}; padding: 6px 10px; color: {TEXT}; min-width: 60px; }}
.grid {{ position: relative; margin: 0 {PAD}px; }}
.panel {{ position: absolute; background: {PANEL_BG}; border: 1px solid {BORDER}; border-radius: 2px; overflow: hidden; }}
.panel .ptitle {{ height: 32px; line-height: 32px; padding: 0 8px; font-size: 14px; font-weight: 500;
                 white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.panel .body {{ position: absolute; left: 8px; right: 8px; top: 32px; bottom: 6px; }}
.panel .error {{ color: #F2495C; font-size: 12px; padding: 4px; }}
.row {{ position: absolute; font-size: 16px; font-weight: 500; line-height: {CELL_HEIGHT}px; padding-left: 2px; }}
.row::before {{ content: "⌄ "; color: {TEXT_WEAK}; }}
.stat-row {{ display: flex; height: 100%; }}
.stat-cell {{ position: relative; flex: 1; display: flex; flex-direction: column; align-items: center; justify-content: center; }}
.stat-cell .spark {{ position: absolute; left: 0; bottom: 0; }}
.stat-value {{ position: relative; font-weight: 500; line-height: 1.1; white-space: nowrap; }}
.stat-name {{ position: relative; color: {TEXT}; margin-bottom: 2px; white-space: nowrap; }}
.stat-one {{ display: flex; height: 100%; align-items: center; justify-content: center; font-weight: 500; }}
.footer {{ height: {FOOTER_HEIGHT}px; padding: 12px {PAD}px; color: {TEXT_WEAK}; font-size: 12px; }}
"""



def panel_box(x, y, w, h, title, body):
    return (f'<div class="panel" style="left:{x:.0f}px;top:{y:.0f}px;width:{w:.0f}px;height:{h:.0f}px">'
            f'<div class="ptitle">{esc(title)}</div><div class="body">{body}</div></div>')
