// Hanoi IOC operations console. Plain JavaScript, no dependencies, nothing from the internet.
// Data: REST (/api/stations, /api/alerts, /api/history) and the WebSocket /ws (alerts with
// resume, readings, station status). Times are shown in Asia/Ho_Chi_Minh.
"use strict";

(() => {
  const TZ = "Asia/Ho_Chi_Minh";
  const TOKEN_KEY = "hanoi-ioc.token";
  const EVENT_KEY = "hanoi-ioc.lastEventId";
  const fmtClock = new Intl.DateTimeFormat("vi-VN", {
    timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  // One time format for every card: "14:05 07/12", Hanoi time, built from parts so that no
  // locale's own ordering or separators slip in.
  const fmtWhen = new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });
  // How long an alert stays on screen (greyed) after it cleared; the server sets it
  // (API_CONSOLE_CLEARED_VISIBLE_S), 2 h when the page is opened some other way.
  const CLEARED_VISIBLE_MS = (() => {
    const meta = document.querySelector('meta[name="hanoi-cleared-visible-s"]');
    const seconds = meta ? Number(meta.content) : NaN;
    return (Number.isFinite(seconds) ? seconds : 7200) * 1000;
  })();
  const fmtDay = new Intl.DateTimeFormat("vi-VN", {
    timeZone: TZ, weekday: "short", day: "2-digit", month: "2-digit", year: "numeric",
  });

  const DOMAINS = {
    air: { vi: "Không khí", en: "Air", shape: "circle", color: "#4aa3df",
      main: ["pm25", "pm10"] },
    water: { vi: "Nước (Hồ Tây)", en: "Water", shape: "diamond", color: "#2bb3b1",
      main: ["dissolved_oxygen", "ph", "water_temperature"] },
    flood: { vi: "Mưa và ngập", en: "Rain & flooding", shape: "triangle", color: "#5fb760",
      main: ["water_depth", "rainfall"] },
    traffic: { vi: "Giao thông", en: "Traffic", shape: "square", color: "#9b7fd1",
      main: ["speed", "occupancy", "flow_motorbike"] },
  };
  const SEVERITY = {
    info: { vi: "Thông tin", en: "Info", rank: 0 },
    minor: { vi: "Nhẹ", en: "Minor", rank: 1 },
    moderate: { vi: "Trung bình", en: "Moderate", rank: 2 },
    severe: { vi: "Nghiêm trọng", en: "Severe", rank: 3 },
    extreme: { vi: "Cực kỳ nghiêm trọng", en: "Extreme", rank: 4 },
  };
  const ALERT_STATE = {
    raised: "Mới / Raised", acknowledged: "Đã xác nhận / Acknowledged",
    cleared: "Đã kết thúc / Cleared",
  };
  const STATION_STATE = {
    online: "Trực tuyến / Online", offline: "Mất kết nối / Offline",
    stale: "Chậm dữ liệu / Stale", unknown: "Chưa rõ / Unknown",
  };
  // Compact column headers (the full bilingual name is the header's tooltip).
  const SHORT = {
    pm25: "PM2.5", pm10: "PM10", no2: "NO2", o3: "O3", dissolved_oxygen: "DO", ph: "pH",
    water_temperature: "Nhiệt độ", turbidity: "Độ đục", water_depth: "Độ ngập", rainfall: "Mưa",
    speed: "Tốc độ", occupancy: "Chiếm dụng", flow_motorbike: "Xe máy", flow_car: "Ô tô",
  };
  // VN_AQI levels and colours, Decision 1459/QĐ-TCMT (2019).
  const AQI_LEVELS = [
    [50, "Tốt", "Good", "#00e400"], [100, "Trung bình", "Moderate", "#ffff00"],
    [150, "Kém", "Poor", "#ff7e00"], [200, "Xấu", "Bad", "#ff0000"],
    [300, "Rất xấu", "Very bad", "#8f3f97"], [Infinity, "Nguy hại", "Hazardous", "#7e0023"],
  ];
  // Street flood depth levels: a project convention (no official thresholds exist).
  const DEPTH_LEVELS = [
    [10, "#38b000", "< 10 cm"], [20, "#ffd60a", "10–20 cm"], [30, "#fb8500", "20–30 cm"],
    [50, "#e5484d", "30–50 cm"], [Infinity, "#7b2cbf", "≥ 50 cm"],
  ];

  const state = {
    token: localStorage.getItem(TOKEN_KEY) || "",
    principal: null,
    stations: new Map(), // station_id -> {id, lon, lat, props}
    alerts: new Map(), // alert_id -> AlertOut
    lastEventId: null,
    ws: null,
    retry: 0,
    hidden: new Set(),
    selected: null,
    alertFilter: "open",
    renderQueued: false,
  };

  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function when(iso) {
    if (!iso) return "—";
    const p = Object.fromEntries(fmtWhen.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
    return `${p.hour}:${p.minute} ${p.day}/${p.month}`;
  }

  function at(iso) {
    return `Lúc / At ${when(iso)}`;
  }

  function ago(iso) {
    if (!iso) return "";
    const minutes = Math.round((Date.now() - new Date(iso).getTime()) / 60000);
    if (minutes < 1) return "vừa xong / just now";
    if (minutes < 60) return `${minutes} phút trước / min ago`;
    const hours = Math.round(minutes / 60);
    if (hours < 48) return `${hours} giờ trước / h ago`;
    return `${Math.round(hours / 24)} ngày trước / d ago`;
  }

  function num(value, unit) {
    if (value === null || value === undefined) return "—";
    const abs = Math.abs(value);
    const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
    return `${value.toFixed(digits)}${unit ? " " + unit : ""}`;
  }

  // A depth gauge reads a little below zero on a dry street (its offset): shown as 0, dry.
  // Only the display: stored values are never changed.
  const DRY = "khô / dry";
  function shown(quantity, value) {
    if (quantity === "water_depth" && value !== null && value !== undefined && value < 0) return 0;
    return value;
  }

  function unitOf(v) {
    return v.unit_display !== undefined && v.unit_display !== null ? v.unit_display : v.unit;
  }

  function measure(quantity, value, unit) {
    const v = shown(quantity, value);
    if (quantity === "water_depth" && v !== null && v !== undefined && v <= 0) {
      return `${num(0, unit)} (${DRY})`;
    }
    return num(v, unit);
  }

  function cell(quantity, value) {
    const v = shown(quantity, value);
    if (quantity === "water_depth" && v !== null && v !== undefined && v <= 0) return `0 ${DRY}`;
    return num(v);
  }

  function toast(text, kind) {
    const el = h("div", { class: `toast ${kind || ""}` }, text);
    $("toasts").append(el);
    setTimeout(() => el.remove(), 6000);
  }

  // --- REST ------------------------------------------------------------------------------------

  async function api(path, options) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const init = { ...(options || {}), headers };
    if (init.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
    const response = await fetch(path, init);
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  async function loadStations() {
    const collection = await api("/api/stations");
    for (const f of collection.features) {
      const [lon, lat] = f.geometry.coordinates;
      state.stations.set(f.id, { id: f.id, lon, lat, props: f.properties });
    }
    drawMap();
    renderPanels();
    touch();
  }

  async function loadAlerts() {
    const query = state.alertFilter === "all" ? "limit=300" : `state=${state.alertFilter}&limit=300`;
    const body = await api(`/api/alerts?${query}`);
    state.alerts.clear();
    for (const a of body.alerts) state.alerts.set(a.alert_id, a);
    if (state.alertFilter === "open" && CLEARED_VISIBLE_MS > 0) {
      // the recently cleared stay on screen a while (greyed), so the story can be followed
      const cleared = await api("/api/alerts?state=cleared&limit=300");
      for (const a of cleared.alerts) if (recentlyCleared(a)) state.alerts.set(a.alert_id, a);
    }
    if (state.lastEventId === null || body.last_event_id < state.lastEventId) {
      setLastEvent(body.last_event_id);
    }
    renderAlerts();
  }

  async function act(alert, action, note) {
    try {
      const body = note === undefined ? undefined : { note };
      const result = await api(`/api/alerts/${alert.alert_id}/${action}`, { method: "POST", body });
      state.alerts.set(result.alert.alert_id, result.alert);
      renderAlerts();
      const done = { acknowledge: "Đã xác nhận / Acknowledged", clear: "Đã đóng / Cleared",
        comment: "Đã ghi chú / Note added" }[action];
      toast(`#${alert.alert_id}: ${done}`, "ok");
    } catch (error) {
      if (error.status === 401 || error.status === 403) openTokenDialog();
      toast(`#${alert.alert_id}: ${error.message}`, "bad");
    }
  }

  // --- the map -----------------------------------------------------------------------------------

  const BBOX = { west: 105.68, east: 105.95, south: 20.935, north: 21.095 };
  const KX = Math.cos((21.03 * Math.PI) / 180);
  const MAP_W = 1000;
  const SCALE = MAP_W / ((BBOX.east - BBOX.west) * KX); // px per degree of latitude
  const MAP_H = (BBOX.north - BBOX.south) * SCALE;
  const project = (lat, lon) => [(lon - BBOX.west) * KX * SCALE, (BBOX.north - lat) * SCALE];
  const path = (points) => points.map(([lat, lon], i) => {
    const [x, y] = project(lat, lon);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");

  // Rough reference shapes, drawn by hand from approximate coordinates (not survey data).
  const RED_RIVER = [
    [21.125, 105.700], [21.113, 105.745], [21.100, 105.778], [21.092, 105.800],
    [21.083, 105.818], [21.070, 105.835], [21.056, 105.848], [21.043, 105.857],
    [21.030, 105.864], [21.015, 105.872], [21.000, 105.878], [20.985, 105.889],
    [20.965, 105.902], [20.945, 105.915], [20.925, 105.930],
  ];
  const WEST_LAKE = [
    [21.0705, 105.8140], [21.0725, 105.8245], [21.0690, 105.8345], [21.0615, 105.8400],
    [21.0530, 105.8385], [21.0455, 105.8330], [21.0430, 105.8230], [21.0465, 105.8120],
    [21.0550, 105.8075], [21.0640, 105.8085],
  ];
  const TRUC_BACH = [[21.0470, 105.8385], [21.0485, 105.8420], [21.0440, 105.8425], [21.0430, 105.8395]];
  const DISTRICTS = [
    ["Tây Hồ", 21.080, 105.818], ["Ba Đình", 21.036, 105.826], ["Hoàn Kiếm", 21.021, 105.858],
    ["Đống Đa", 21.014, 105.827], ["Hai Bà Trưng", 21.005, 105.855], ["Cầu Giấy", 21.031, 105.795],
    ["Thanh Xuân", 20.994, 105.810], ["Hoàng Mai", 20.973, 105.852], ["Long Biên", 21.047, 105.893],
    ["Hà Đông", 20.966, 105.770], ["Nam Từ Liêm", 21.010, 105.757], ["Bắc Từ Liêm", 21.066, 105.758],
  ];

  function stationColor(props) {
    if (props.state === "offline" || props.state === "unknown") return "#5c6370";
    const domain = DOMAINS[props.domain];
    if (props.domain === "air") {
      const aqi = (props.indices || []).find((i) => i.index.toUpperCase() === "VN_AQI");
      if (aqi && aqi.value !== null) return AQI_LEVELS.find(([max]) => aqi.value <= max)[3];
    }
    if (props.domain === "flood") {
      const depth = (props.latest || []).find((v) => v.quantity === "water_depth");
      if (depth) return DEPTH_LEVELS.find(([max]) => depth.value < max)[1];
    }
    return domain ? domain.color : "#999";
  }

  function marker(shape, color, cls) {
    const common = { fill: color, class: cls };
    if (shape === "diamond") return s("polygon", { ...common, points: "0,-9 9,0 0,9 -9,0" });
    if (shape === "triangle") return s("polygon", { ...common, points: "0,-10 9,7 -9,7" });
    if (shape === "square") return s("rect", { ...common, x: -7, y: -7, width: 14, height: 14, rx: 2 });
    return s("circle", { ...common, r: 8 });
  }

  // The part of the map shown: the stations' extent with a margin, widened to the box's own
  // shape so that the map fills it (no letterboxing) and the stations are not specks.
  function mapView() {
    const svg = $("map");
    const boxW = svg.clientWidth || MAP_W, boxH = svg.clientHeight || MAP_H;
    let x0 = 0, y0 = 0, x1 = MAP_W, y1 = MAP_H;
    if (state.stations.size) {
      const pts = [...state.stations.values()].map((st) => project(st.lat, st.lon));
      const pad = 40;
      x0 = Math.min(...pts.map((p) => p[0])) - pad; x1 = Math.max(...pts.map((p) => p[0])) + pad;
      y0 = Math.min(...pts.map((p) => p[1])) - pad; y1 = Math.max(...pts.map((p) => p[1])) + pad;
    }
    let w = x1 - x0, h = y1 - y0;
    const aspect = boxW / Math.max(1, boxH);
    if (w / h < aspect) { const nw = h * aspect; x0 -= (nw - w) / 2; w = nw; } else {
      const nh = w / aspect; y0 -= (nh - h) / 2; h = nh;
    }
    return { x: x0, y: y0, w, h };
  }

  function drawMap() {
    const svg = $("map");
    const view = mapView();
    svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map((v) => v.toFixed(1)).join(" "));
    svg.replaceChildren();
    svg.append(s("rect", { class: "land", x: view.x, y: view.y, width: view.w, height: view.h }));
    const grid = s("g", { class: "graticule" });
    for (let lon = 105.70; lon < BBOX.east; lon += 0.05) {
      const [x] = project(BBOX.north, lon);
      grid.append(s("line", { x1: x, y1: view.y, x2: x, y2: view.y + view.h }),
        s("text", { x: x + 3, y: view.y + view.h - 6 }, `${lon.toFixed(2)}°E`));
    }
    for (let lat = 20.95; lat < BBOX.north; lat += 0.05) {
      const [, y] = project(lat, BBOX.west);
      grid.append(s("line", { x1: view.x, y1: y, x2: view.x + view.w, y2: y }),
        s("text", { x: view.x + 4, y: y - 3 }, `${lat.toFixed(2)}°N`));
    }
    svg.append(grid);
    const riverPath = path(RED_RIVER);
    svg.append(
      s("path", { class: "river-bank", d: riverPath }),
      s("path", { class: "river", d: riverPath, id: "red-river" }),
      s("path", { class: "lake", d: `${path(WEST_LAKE)} Z` }),
      s("path", { class: "lake", d: `${path(TRUC_BACH)} Z` }),
    );
    const [hx, hy] = project(21.0287, 105.8524);
    svg.append(s("ellipse", { class: "lake", cx: hx, cy: hy, rx: 4, ry: 8 }));
    const labels = s("g", { class: "districts" });
    for (const [name, lat, lon] of DISTRICTS) {
      const [x, y] = project(lat, lon);
      labels.append(s("text", { x, y }, name));
    }
    svg.append(labels);
    const [lx, ly] = project(21.058, 105.8245);
    const [rx, ry] = project(21.005, 105.899);
    svg.append(
      s("text", { class: "water-label", x: lx, y: ly }, "Hồ Tây"),
      s("text", { class: "water-label river-label", x: rx, y: ry, transform: `rotate(-38 ${rx} ${ry})` },
        "Sông Hồng"),
    );
    drawScale(svg, view);
    const layer = s("g", { id: "stations" });
    svg.append(layer);
    drawStations();
  }

  function drawScale(svg, view) {
    const km = SCALE / 111.2; // px per km (1° of latitude ≈ 111.2 km)
    const right = view.x + view.w;
    const x0 = right - 40 - 2 * km;
    const y0 = view.y + view.h - 28;
    svg.append(s("g", { class: "scale" },
      s("rect", { x: x0, y: y0, width: km, height: 5 }),
      s("rect", { x: x0 + km, y: y0, width: km, height: 5, class: "alt" }),
      s("text", { x: x0, y: y0 - 5 }, "0"),
      s("text", { x: x0 + 2 * km - 16, y: y0 - 5 }, "2 km"),
      s("text", { x: right - 28, y: view.y + 34, class: "north" }, "B"),
      s("path", { d: `M${right - 24},${view.y + 40} l-7,16 l7,-4 l7,4 z`, class: "north-arrow" })));
  }

  function drawStations() {
    const layer = $("stations");
    if (!layer) return;
    layer.replaceChildren();
    const ordered = [...state.stations.values()].sort((a, b) => b.lat - a.lat);
    for (const st of ordered) {
      const p = st.props;
      if (state.hidden.has(p.domain)) continue;
      const [x, y] = project(st.lat, st.lon);
      const domain = DOMAINS[p.domain] || DOMAINS.air;
      const g = s("g", {
        class: `station state-${p.state}${state.selected === st.id ? " selected" : ""}`,
        transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
        tabindex: 0,
      });
      if (p.open_alerts > 0) {
        g.append(s("circle", { r: 15, class: `alert-ring sev-${p.max_open_severity || "minor"}` }));
      }
      g.append(marker(domain.shape, stationColor(p), "shape"));
      const values = (p.latest || []).slice(0, 3)
        .map((v) => `${v.label_vi}: ${measure(v.quantity, v.value, unitOf(v))}`);
      g.append(s("title", {}, [
        `${p.name} (${p.station_id})`, `${p.district} · ${domain.vi} / ${domain.en}`,
        STATION_STATE[p.state] || p.state, ...values,
        p.open_alerts ? `Cảnh báo đang mở / Open alerts: ${p.open_alerts}` : "",
      ].filter(Boolean).join("\n")));
      g.addEventListener("click", () => selectStation(st.id));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") selectStation(st.id); });
      layer.append(g);
    }
  }

  function drawLegend() {
    const legend = $("legend");
    legend.replaceChildren();
    const row = (swatch, text) => h("div", { class: "legend-row" }, swatch, h("span", {}, text));
    const shape = (name, color, cls) => {
      const svg = s("svg", { viewBox: "-11 -11 22 22", width: 16, height: 16 });
      svg.append(marker(name, color, cls || ""));
      return svg;
    };
    for (const d of Object.values(DOMAINS)) {
      legend.append(row(shape(d.shape, d.color), `${d.vi} / ${d.en}`));
    }
    legend.append(
      row(shape("circle", "#5c6370"), "Mất kết nối / Offline"),
      row(shape("circle", "#9aa4b2", "stale-swatch"), "Chậm dữ liệu / Stale"),
      row(h("span", { class: "ring-swatch" }), "Có cảnh báo / Open alert"),
    );
    const scaleRow = (title, stops) => h("div", { class: "legend-scale" },
      h("div", { class: "legend-scale-title" }, title),
      h("div", { class: "legend-stops" }, stops.map(([color, label]) =>
        h("span", { class: "stop", title: label, "data-color": color }, label))));
    legend.append(
      scaleRow("VN_AQI", AQI_LEVELS.map(([, vi, , color]) => [color, vi])),
      scaleRow("Độ sâu ngập / Flood depth", DEPTH_LEVELS.map(([, color, label]) => [color, label])),
    );
    for (const stop of legend.querySelectorAll(".stop")) {
      stop.style.background = stop.dataset.color;
      stop.style.color = contrast(stop.dataset.color);
    }
  }

  function contrast(hex) {
    const n = parseInt(hex.slice(1), 16);
    const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
    return luma > 150 ? "#111" : "#fff";
  }

  function drawFilters() {
    const box = $("domain-filters");
    box.replaceChildren();
    for (const [key, d] of Object.entries(DOMAINS)) {
      const on = !state.hidden.has(key);
      box.append(h("button", {
        type: "button", class: `chip${on ? " on" : ""}`, "aria-pressed": String(on),
        onclick: () => {
          if (state.hidden.has(key)) state.hidden.delete(key); else state.hidden.add(key);
          drawFilters();
          drawStations();
        },
      }, d.vi));
    }
  }

  // --- station detail with a sparkline -------------------------------------------------------

  async function selectStation(id) {
    state.selected = state.selected === id ? null : id;
    drawStations();
    const panel = $("station-detail");
    const st = state.stations.get(state.selected);
    if (!st) { panel.hidden = true; return; }
    const p = st.props;
    const domain = DOMAINS[p.domain] || DOMAINS.air;
    const aqi = (p.indices || []).find((i) => i.index.toUpperCase() === "VN_AQI");
    panel.replaceChildren(...[
      h("button", { type: "button", class: "close", "aria-label": "Đóng / Close",
        onclick: () => selectStation(id) }, "×"),
      h("h3", {}, p.name, h("span", { class: "muted" }, ` ${p.station_id}`)),
      h("p", { class: "muted" }, `${p.district} · ${domain.vi} / ${domain.en} · ${STATION_STATE[p.state] || p.state}`),
      aqi && aqi.value !== null
        ? h("p", {}, "VN_AQI: ", h("b", {}, String(Math.round(aqi.value))), ` — ${aqi.level || ""}`)
        : null,
      h("dl", { class: "values" }, byMainOrder(p).map((v) => [
        h("dt", {}, `${v.label_vi} / ${v.label_en}`),
        h("dd", {}, measure(v.quantity, v.value, unitOf(v)))])),
      h("div", { class: "spark", id: "spark" }, "…"),
    ].filter(Boolean));
    panel.hidden = false;
    const first = mainValue(p);
    if (!first) { $("spark").textContent = ""; return; }
    try {
      const to = new Date();
      const from = new Date(to.getTime() - 6 * 3600 * 1000);
      const q = new URLSearchParams({ sensor: first.sensor, from: from.toISOString(), to: to.toISOString(), max_points: "120" });
      const hist = await api(`/api/history?${q}`);
      drawSpark($("spark"), hist, first);
    } catch (error) {
      $("spark").textContent = error.message;
    }
  }

  function byMainOrder(props) {
    const order = (DOMAINS[props.domain] || DOMAINS.air).main;
    const rank = (v) => (order.includes(v.quantity) ? order.indexOf(v.quantity) : order.length);
    return [...(props.latest || [])].sort((a, b) => rank(a) - rank(b));
  }

  function mainValue(props) {
    return byMainOrder(props)[0];
  }

  function drawSpark(box, hist, sensor) {
    if (!box) return;
    box.replaceChildren();
    const pts = hist.points;
    if (pts.length < 2) { box.textContent = "Chưa đủ số liệu / Not enough data"; return; }
    const w = 300, ht = 60;
    const t0 = new Date(pts[0].t).getTime(), t1 = new Date(pts[pts.length - 1].t).getTime();
    const q = sensor.quantity;
    const lo = shown(q, Math.min(...pts.map((p) => p.min)));
    const hi = Math.max(lo, shown(q, Math.max(...pts.map((p) => p.max))));
    const x = (t) => ((new Date(t).getTime() - t0) / Math.max(1, t1 - t0)) * w;
    const y = (v) => ht - ((v - lo) / Math.max(1e-9, hi - lo)) * (ht - 4) - 2;
    const yv = (v) => y(shown(q, v));
    const band = pts.map((p) => `${x(p.t).toFixed(1)},${yv(p.max).toFixed(1)}`)
      .concat([...pts].reverse().map((p) => `${x(p.t).toFixed(1)},${yv(p.min).toFixed(1)}`));
    const line = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${yv(p.avg).toFixed(1)}`).join(" ");
    box.append(
      h("div", { class: "muted" }, `${sensor.label_vi} — 6 giờ / 6 h (${hist.source}` +
        `${hist.bucket_s ? `, ${hist.bucket_s} s` : ""}) ${num(lo)}–${num(hi, unitOf(hist))}`),
      s("svg", { viewBox: `0 0 ${w} ${ht}`, class: "spark-svg" },
        s("polygon", { points: band.join(" "), class: "spark-band" }),
        s("path", { d: line, class: "spark-line" })),
    );
  }

  // --- panels ------------------------------------------------------------------------------------

  function renderPanels() {
    const root = $("panels");
    root.replaceChildren();
    for (const [key, d] of Object.entries(DOMAINS)) {
      const stations = [...state.stations.values()].filter((st) => st.props.domain === key)
        .sort((a, b) => a.props.name.localeCompare(b.props.name, "vi"));
      if (!stations.length) continue;
      const units = new Map();
      for (const st of stations) for (const v of st.props.latest || []) units.set(v.quantity, v);
      const columns = d.main.filter((q) => units.has(q));
      const head = h("tr", {}, h("th", {}, "Trạm / Station"),
        key === "air" ? h("th", {}, "VN_AQI") : null,
        columns.map((q) => h("th", { class: "num", title: `${units.get(q).label_vi} / ${units.get(q).label_en}` },
          SHORT[q] || units.get(q).label_vi, h("small", {}, unitOf(units.get(q)) || "\u00a0"))));
      const rows = stations.map((st) => {
        const byQ = new Map((st.props.latest || []).map((v) => [v.quantity, v]));
        const aqi = (st.props.indices || []).find((i) => i.index.toUpperCase() === "VN_AQI");
        let aqiCell = null;
        if (key === "air") {
          const level = aqi && aqi.value !== null ? AQI_LEVELS.find(([max]) => aqi.value <= max) : null;
          const chip = h("span", { class: "aqi-chip", title: level ? `${level[1]} / ${level[2]}` : "" },
            aqi && aqi.value !== null ? String(Math.round(aqi.value)) : "—");
          if (level) { chip.style.background = level[3]; chip.style.color = contrast(level[3]); }
          aqiCell = h("td", {}, chip);
        }
        return h("tr", { class: `state-${st.props.state}` },
          h("td", { class: "name", title: `${st.props.name} (${st.props.station_id})` },
            h("span", { class: `state-dot ${st.props.state}`, title: STATION_STATE[st.props.state] }),
            st.props.name, h("small", {}, st.props.district)),
          aqiCell,
          columns.map((q) => h("td", { class: "num" }, byQ.has(q) ? cell(q, byQ.get(q).value) : "—")));
      });
      root.append(h("section", { class: "card panel" },
        h("h2", {}, d.vi, h("span", { class: "en" }, ` / ${d.en}`)),
        h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows)))));
    }
  }

  // --- the alert inbox -----------------------------------------------------------------------------

  function recentlyCleared(a) {
    return a.state === "cleared" && a.cleared_at
      && Date.now() - new Date(a.cleared_at).getTime() <= CLEARED_VISIBLE_MS;
  }

  function visibleAlerts() {
    const f = state.alertFilter;
    return [...state.alerts.values()]
      .filter((a) => f === "all"
        || (f === "open" ? a.state !== "cleared" || recentlyCleared(a) : a.state === "raised"))
      .sort((a, b) => (a.state === "cleared") - (b.state === "cleared")
        || b.severity_rank - a.severity_rank || b.raised_at.localeCompare(a.raised_at));
  }

  function renderAlerts() {
    const list = $("alerts");
    const alerts = visibleAlerts();
    const canAct = state.principal && ["operator", "admin"].includes(state.principal.role);
    list.replaceChildren(...alerts.map((a) => alertItem(a, canAct)));
    $("alert-count").textContent = String(alerts.filter((a) => a.state !== "cleared").length);
    $("view-only").hidden = canAct || !state.principal;
    $("alerts-empty").hidden = alerts.length > 0;
    markAlertStations();
  }

  function alertItem(a, canAct) {
    const sev = SEVERITY[a.severity] || SEVERITY.info;
    const station = a.station_id ? state.stations.get(a.station_id) : null;
    const place = [station ? station.props.name : a.station_id, a.district].filter(Boolean).join(" · ");
    const unit = unitOf(a);
    const value = a.value !== null ? measure(a.quantity, a.value, unit) : "";
    const limit = a.value !== null && a.threshold !== null
      ? ` (ngưỡng / threshold ${num(a.threshold, unit)})` : "";
    const buttons = [];
    if (a.state === "raised") {
      buttons.push(h("button", { type: "button", class: "btn primary", disabled: !canAct,
        onclick: () => act(a, "acknowledge") }, "Xác nhận / Acknowledge"));
    }
    if (a.state !== "cleared") {
      buttons.push(h("button", { type: "button", class: "btn", disabled: !canAct,
        onclick: () => act(a, "clear") }, "Đóng / Clear"));
    }
    buttons.push(h("button", { type: "button", class: "btn ghost", disabled: !canAct,
      onclick: () => askNote(a) }, "Ghi chú / Note"));
    return h("li", { class: `alert sev-${a.severity} state-${a.state}`, "data-id": a.alert_id },
      h("div", { class: "alert-top" },
        h("span", { class: `badge sev-${a.severity}` }, `${sev.vi} / ${sev.en}`),
        h("span", { class: "state-chip" }, ALERT_STATE[a.state] || a.state),
        h("time", { datetime: a.observed_at,
          title: `Ghi nhận / Observed ${when(a.observed_at)} · báo / raised ${ago(a.raised_at)}` },
        at(a.observed_at))),
      h("div", { class: "alert-title" }, a.title_vi, h("span", { class: "en" }, ` / ${a.title_en}`)),
      h("div", { class: "alert-msg" }, a.message_vi),
      h("div", { class: "alert-msg en" }, a.message_en),
      instruction(a),
      h("div", { class: "alert-meta" }, [place, value + limit, `#${a.alert_id}`].filter(Boolean).join(" · ")),
      a.acknowledged_by ? h("div", { class: "alert-meta ack",
        title: `${ago(a.acknowledged_at)}` }, `Xác nhận bởi / Acknowledged by ${a.acknowledged_by}`) : null,
      a.state === "cleared" ? h("div", { class: "alert-meta cleared", title: ago(a.cleared_at) },
        a.cleared_by && a.cleared_by !== "processing"
          ? `Đóng bởi / Cleared by ${a.cleared_by}`
          : "Tự kết thúc: điều kiện đã hết / Ended: the condition is over") : null,
      h("div", { class: "alert-actions" }, buttons));
  }

  // What the public should do (every public rule carries one; processing puts it in details).
  function instruction(a) {
    const d = a.details || {};
    if (a.state === "cleared" || !d.instruction_vi) return null;
    return h("div", { class: "alert-instr" },
      h("span", { class: "instr-label" }, "Khuyến cáo / Advice: "), String(d.instruction_vi),
      d.instruction_en ? h("span", { class: "en" }, ` / ${d.instruction_en}`) : null);
  }

  function markAlertStations() {
    if (state.alertFilter === "raised") return; // acknowledged alerts are not loaded then
    const open = new Map();
    for (const a of state.alerts.values()) {
      if (a.state === "cleared" || !a.station_id) continue;
      const prev = open.get(a.station_id);
      if (!prev || SEVERITY[a.severity].rank > SEVERITY[prev.max].rank) {
        open.set(a.station_id, { max: a.severity, n: (prev ? prev.n : 0) + 1 });
      } else prev.n += 1;
    }
    for (const st of state.stations.values()) {
      const o = open.get(st.id);
      st.props.open_alerts = o ? o.n : 0;
      st.props.max_open_severity = o ? o.max : null;
    }
    scheduleRender();
  }

  const noteDialog = () => $("note-dialog");
  let noteTarget = null;
  function askNote(alert) {
    noteTarget = alert;
    $("note-input").value = "";
    $("note-title").firstChild.textContent = `Ghi chú cho #${alert.alert_id} `;
    noteDialog().showModal();
  }

  // --- live feed ---------------------------------------------------------------------------------

  function setConn(kind, text) {
    const el = $("conn");
    el.dataset.state = kind;
    $("conn-text").textContent = text;
  }

  function setLastEvent(id) {
    if (id === null || id === undefined) return;
    state.lastEventId = state.lastEventId === null ? id : Math.max(state.lastEventId, id);
    localStorage.setItem(EVENT_KEY, String(state.lastEventId));
    $("last-event").textContent = `Sự kiện cuối / Last event: #${state.lastEventId}`;
  }

  function send(message) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
  }

  function subscribeAlerts() {
    send({ type: "subscribe", channel: "alerts", resume_from: state.lastEventId });
  }

  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const ws = new WebSocket(url);
    state.ws = ws;
    setConn("connecting", "Đang kết nối / Connecting");
    ws.addEventListener("open", () => send({ type: "auth", token: state.token || null }));
    ws.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
    ws.addEventListener("close", (e) => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (e.code === 4401) {
        setConn("down", "Cần mã truy cập / Token needed");
        openTokenDialog();
        return;
      }
      const delay = Math.min(30, 2 ** state.retry) * (0.5 + Math.random() / 2);
      state.retry += 1;
      setConn("down", `Mất kết nối, thử lại sau ${Math.ceil(delay)} s / Reconnecting`);
      setTimeout(connect, delay * 1000);
    });
  }

  function onMessage(m) {
    touch();
    switch (m.type) {
      case "hello":
        state.retry = 0;
        state.principal = m.principal;
        $("who").textContent = `${m.principal.name} (${m.principal.role}` +
          `${m.principal.scope_domains ? ": " + m.principal.scope_domains.join(", ") : ""})`;
        if (state.lastEventId === null) setLastEvent(m.last_event_id);
        subscribeAlerts();
        send({ type: "subscribe", channel: "readings", max_rate_hz: 1 });
        send({ type: "subscribe", channel: "status" });
        setConn("sync", "Đang đồng bộ / Syncing");
        renderAlerts();
        break;
      case "replay_done":
        setConn("live", "Trực tuyến / Live");
        break;
      case "alert_event":
        setLastEvent(m.event.event_id);
        if (m.alert) {
          const known = state.alerts.has(m.alert.alert_id);
          state.alerts.set(m.alert.alert_id, m.alert);
          if (!known && !m.replay && m.event.action === "raised") {
            toast(`${SEVERITY[m.alert.severity].vi}: ${m.alert.title_vi} / ${m.alert.title_en}`, `sev-${m.alert.severity}`);
          }
          renderAlerts();
        }
        break;
      case "resync":
        send({ type: "subscribe", channel: "alerts", resume_from: m.resume_from });
        break;
      case "readings":
        applyReadings(m.readings);
        break;
      case "status":
        for (const st of m.stations) {
          const known = state.stations.get(st.station_id);
          if (!known) continue;
          Object.assign(known.props, { state: st.state, reported_state: st.reported_state,
            state_since: st.since, state_reason: st.reason, last_received: st.last_received });
        }
        scheduleRender();
        break;
      case "ping":
        // Required: a ping left unanswered for pong_timeout_s closes the connection.
        send({ type: "pong", id: m.id });
        break;
      case "error":
        toast(m.detail, "bad");
        break;
      default:
        break;
    }
  }

  function applyReadings(readings) {
    for (const r of readings) {
      const st = state.stations.get(r.station_id);
      if (!st) continue;
      const latest = st.props.latest || (st.props.latest = []);
      const found = latest.find((v) => v.quantity === r.quantity);
      if (found) Object.assign(found, { value: r.value, time: r.time, quality: r.quality });
      else latest.push({ ...r, label_vi: r.quantity, label_en: r.quantity, unit_display: "" });
    }
    scheduleRender();
  }

  function scheduleRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    setTimeout(() => {
      state.renderQueued = false;
      drawStations();
      renderPanels();
    }, 300);
  }

  function touch() {
    $("last-update").textContent = `Cập nhật / Updated: ${fmtClock.format(new Date())}`;
  }

  // --- token ---------------------------------------------------------------------------------------

  function openTokenDialog() {
    const dialog = $("token-dialog");
    if (dialog.open) return;
    $("token-input").value = state.token;
    dialog.showModal();
  }

  function restart() {
    if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
    state.retry = 0;
    Promise.all([loadStations(), loadAlerts()]).catch(onLoadError).finally(() => {
      connect();
      const wanted = fragment.get("station");
      if (wanted && state.stations.has(wanted) && state.selected !== wanted) selectStation(wanted);
    });
  }

  function onLoadError(error) {
    if (error.status === 401) openTokenDialog();
    toast(error.message, "bad");
  }

  function wire() {
    $("token-btn").addEventListener("click", openTokenDialog);
    $("token-form").addEventListener("submit", () => {
      state.token = $("token-input").value.trim();
      localStorage.setItem(TOKEN_KEY, state.token);
      restart();
    });
    $("token-clear").addEventListener("click", () => {
      state.token = "";
      localStorage.removeItem(TOKEN_KEY);
      $("token-dialog").close();
      restart();
    });
    $("note-cancel").addEventListener("click", () => noteDialog().close());
    $("note-form").addEventListener("submit", () => {
      const note = $("note-input").value.trim();
      if (noteTarget && note) act(noteTarget, "comment", note);
    });
    $("alert-filter").addEventListener("change", (e) => {
      state.alertFilter = e.target.value;
      loadAlerts().catch(onLoadError);
    });
    const tick = () => {
      const now = new Date();
      $("clock").textContent = `${fmtDay.format(now)} ${fmtClock.format(now)}`;
    };
    tick();
    setInterval(tick, 1000);
    setInterval(() => loadStations().catch(() => {}), 60000);
    setInterval(renderAlerts, 60000); // the recently cleared leave the screen in time
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(drawMap, 200);
    });
  }

  // A wall display can be set up by URL: /#token=...&station=fd-thai-ha (the fragment never
  // reaches the server; the token is moved to localStorage and removed from the address bar).
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    state.token = fragment.get("token");
    localStorage.setItem(TOKEN_KEY, state.token);
  }
  if (fragment.has("token") || fragment.has("station")) history.replaceState(null, "", location.pathname);

  wire();
  drawFilters();
  drawLegend();
  drawMap();
  restart();
})();
