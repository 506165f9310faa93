// satiot console: keeps the Messages page live. Asks the same-origin JSON feed for messages
// newer than the newest row shown and adds them on top; builds rows with DOM methods only
// (textContent, never innerHTML), so message content can never become markup.
(function () {
  "use strict";

  var section = document.getElementById("messages");
  var body = document.getElementById("messages-body");
  if (!section || !body) {
    return;
  }
  var feed = section.getAttribute("data-feed");
  var refreshMs = parseInt(section.getAttribute("data-refresh-ms"), 10) || 3000;
  var maxRows = parseInt(section.getAttribute("data-max-rows"), 10) || 100;
  var withTenant = section.getAttribute("data-with-tenant") === "true";
  var newest = body.getAttribute("data-newest") || "";
  var statusBox = document.getElementById("live-status");
  var statusText = document.getElementById("live-text");
  var empty = document.getElementById("messages-empty");
  var baseText = statusText ? statusText.textContent : "";
  var stopped = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function cell(className, text) {
    return el("td", className, text);
  }

  function withSub(main, sub, className) {
    var td = cell(className);
    td.appendChild(main);
    var small = el("div", "sub");
    small.appendChild(sub);
    td.appendChild(small);
    return td;
  }

  function row(r) {
    var tr = el("tr", "fresh");
    tr.setAttribute("data-id", r.id);
    var time = el("time", null, r.at);
    time.setAttribute("datetime", r.at_iso);
    tr.appendChild(withSub(time, document.createTextNode(r.date), "nowrap"));
    var link = el("a", null, r.device);
    link.setAttribute("href", r.device_url);
    if (r.device !== r.dev_eui) {
      tr.appendChild(withSub(link, el("code", null, r.dev_eui), "device"));
    } else {
      var tdDevice = cell("device");
      tdDevice.appendChild(link);
      tr.appendChild(tdDevice);
    }
    if (withTenant) {
      tr.appendChild(cell("tenant", r.tenant));
    }
    tr.appendChild(cell("num", r.f_cnt));
    tr.appendChild(cell("num", r.f_port === null ? "—" : r.f_port));
    var payload = el("code", "payload", r.payload);
    payload.setAttribute("title", r.payload_bytes + " bytes");
    var tdPayload = cell();
    tdPayload.appendChild(payload);
    tr.appendChild(tdPayload);
    tr.appendChild(cell("num", r.receptions));
    tr.appendChild(
      withSub(document.createTextNode(r.satellites.join(", ")),
              document.createTextNode(r.stations.join(", ")), "via")
    );
    return tr;
  }

  function setText(id, value) {
    var node = document.getElementById(id);
    if (node) {
      node.textContent = String(value);
    }
  }

  function status(text, problem) {
    if (statusText) {
      statusText.textContent = text;
    }
    if (statusBox) {
      statusBox.classList.toggle("live-problem", Boolean(problem));
    }
  }

  function apply(data) {
    var rows = data.rows || [];
    if (rows.length >= maxRows / 2) {
      // A full answer may have skipped messages in between: show the newest set, no gap.
      while (body.firstChild) {
        body.removeChild(body.firstChild);
      }
    }
    for (var i = rows.length - 1; i >= 0; i -= 1) {
      body.insertBefore(row(rows[i]), body.firstChild);
    }
    while (body.rows.length > maxRows) {
      body.deleteRow(body.rows.length - 1);
    }
    if (data.newest) {
      newest = data.newest;
      body.setAttribute("data-newest", newest);
    }
    if (empty) {
      empty.hidden = body.rows.length > 0;
    }
    var figures = data.figures || {};
    setText("fig-minute", Number(figures.last_minute).toLocaleString("en-US"));
    setText("fig-hour", Number(figures.last_hour).toLocaleString("en-US"));
    setText("fig-rate", (figures.last_hour / 60).toFixed(1));
  }

  function tick() {
    if (stopped) {
      return;
    }
    var url = feed + (newest ? "?after=" + encodeURIComponent(newest) : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (response.redirected || response.status === 401 || response.status === 403 ||
            type.indexOf("application/json") === -1) {
          stopped = true;
          status("Paused — your session ended; reload the page to sign in again", true);
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (data) {
          apply(data);
          status(baseText, false);
        }
      })
      .catch(function () {
        status("Connection lost — retrying", true);
      })
      .then(function () {
        if (!stopped) {
          window.setTimeout(tick, refreshMs);
        }
      });
  }

  window.setTimeout(tick, refreshMs);
})();
