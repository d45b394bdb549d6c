/* The dashboard pages' script: charts drawn with the vendored uPlot, sortable
 * and searchable campaigns, and a refresh from the page's JSON endpoint every
 * few seconds while the tab is visible.
 *
 * The server renders every figure; this script redraws the same markup from
 * the same JSON (templates/mailtrack/_macros.html, campaign.html). Text from
 * events goes in with textContent only, and only http(s) URLs become links.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var page = script.dataset.page;
  var jsonUrl = script.dataset.json;
  var refreshMs = Number(script.dataset.refresh) * 1000;
  var campaignUrl = script.dataset.campaignUrl;
  var recipientUrl = script.dataset.recipientUrl;
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);

  // -- formatting, as the server's filters do --------------------------------

  function percent(rate) {
    if (rate === null || rate === undefined) { return "–"; }
    return (Math.min(Math.max(rate, 0), 1) * 100).toFixed(1) + "%";
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function moment(value) {
    if (value === null || value === undefined) { return "–"; }
    if (typeof value === "string") { return value.replace("T", " ").slice(0, 16) + " UTC"; }
    var d = new Date(value * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  function webLink(url) {
    if (typeof url !== "string") { return null; }
    try {
      var parsed = new URL(url);
      return (parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.host ? url : null;
    } catch (error) {
      return null;
    }
  }

  function withQuery(path, args) {
    var query = new URLSearchParams();
    Object.keys(args).forEach(function (key) {
      if (args[key] !== null && args[key] !== undefined) { query.set(key, String(args[key])); }
    });
    var text = query.toString();
    return text ? path + "?" + text : path;
  }

  // -- building markup -------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (attrs[key] !== null && attrs[key] !== undefined) { node.setAttribute(key, String(attrs[key])); }
    });
    (children || []).forEach(function (child) {
      node.append(child instanceof Node ? child : String(child));
    });
    return node;
  }

  function urlText(url) {
    var href = webLink(url);
    if (href) { return el("a", { href: href, rel: "noreferrer noopener nofollow" }, [url]); }
    if (url === null || url === undefined) { return el("span", { "class": "muted" }, ["(no URL)"]); }
    return document.createTextNode(String(url));
  }

  function metadataText(metadata) {
    var parts = [];
    Object.keys(metadata || {}).forEach(function (key, index) {
      if (index) { parts.push(" "); }
      var value = metadata[key];
      parts.push(el("code", {}, [key + "=" + (typeof value === "string" ? value : JSON.stringify(value))]));
    });
    return parts;
  }

  function kind(type) {
    return { "email.sent": "sent", "email.opened": "open", "link.clicked": "click" }[type] || type;
  }

  function replaceRows(tbody, rows, emptyText, columns) {
    tbody.textContent = "";
    if (!rows.length && emptyText) {
      rows = [el("tr", {}, [el("td", { colspan: columns, "class": "muted" }, [emptyText])])];
    }
    rows.forEach(function (row) { tbody.append(row); });
  }

  function cell(value, attrs) {
    return el("td", Object.assign({ "class": "n" }, attrs || {}), [value]);
  }

  function setText(id, value) {
    var node = document.getElementById(id);
    if (node) { node.textContent = value; }
  }

  // -- charts ----------------------------------------------------------------

  function color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); };

  function timelineColumns(payload) {
    var x = [], opensPeople = [], opensMachines = [], clicksPeople = [], clicksMachines = [];
    var timeline = payload.timeline;
    // Each period's value holds until the next period starts; the last one
    // ends a period later, so it gets a closing point of its own.
    var points = timeline.length ? timeline.concat([
      Object.assign({}, timeline[timeline.length - 1], {
        start: timeline[timeline.length - 1].start + payload.bucket_seconds
      })
    ]) : [];
    points.forEach(function (b) {
      x.push(b.start);
      opensPeople.push(b.opens - b.opens_machine);
      opensMachines.push(b.opens_machine);
      clicksPeople.push(b.clicks - b.clicks_machine);
      clicksMachines.push(b.clicks_machine);
    });
    return [x, opensPeople, opensMachines, clicksPeople, clicksMachines];
  }

  function zeroBased(u, min, max) { return [0, Math.max(1, max)]; }

  var COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];

  function axis() {
    return { stroke: color("--muted"), grid: { stroke: color("--line"), width: 1 }, ticks: { stroke: color("--line") } };
  }

  function timelineChart(container, payload) {
    var width = container.clientWidth || 300;
    var steps = uPlot.paths.stepped({ align: 1 });
    var series = [
      { label: "From (UTC)", value: function (u, v) { return v === null ? "–" : moment(v); } },
      { label: "Opens, people", stroke: color("--opens"), width: 2, fill: color("--opens") + "22", paths: steps },
      { label: "Opens, machines", stroke: color("--opens-machine"), width: 2, dash: [6, 4], paths: steps },
      { label: "Clicks, people", stroke: color("--clicks"), width: 2, fill: color("--clicks") + "22", paths: steps },
      { label: "Clicks, machines", stroke: color("--clicks-machine"), width: 2, dash: [6, 4], paths: steps }
    ];
    var chart = new uPlot({
      width: width,
      height: width < 500 ? 200 : 280,
      tzDate: utc,
      scales: { y: { range: zeroBased } },
      series: series,
      // Counts: whole numbers on the y axis.
      axes: [axis(), Object.assign(axis(), { size: 44, incrs: COUNT_STEPS })]
    }, timelineColumns(payload), container);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = container.clientWidth;
        if (w && w !== chart.width) { chart.setSize({ width: w, height: w < 500 ? 200 : 280 }); }
      }).observe(container);
    }
    return chart;
  }

  function sparkline(container, daily) {
    var x = [], opens = [], clicks = [];
    daily.forEach(function (d) { x.push(d.start); opens.push(d.opens); clicks.push(d.clicks); });
    return new uPlot({
      width: 120,
      height: 32,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false },
      scales: { x: { time: false }, y: { range: zeroBased } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: color("--opens"), width: 1.5 }, { stroke: color("--clicks"), width: 1.5 }]
    }, [x, opens, clicks], container);
  }

  // -- the campaigns overview --------------------------------------------------

  function campaignHref(name) {
    return withQuery(campaignUrl, { campaign: name });
  }

  function rateCell(label, rate) {
    var value = rate.human === null ? -1 : rate.human;
    return el("td", { "class": "n", "data-label": label, "data-value": value }, [
      el("span", {}, [
        percent(rate.human),
        el("span", { "class": "basis" }, [rate.basis === "sent" ? " of sent" : " of engaged"])
      ])
    ]);
  }

  function overviewRow(item) {
    var name = item.campaign === null ? "" : String(item.campaign);
    var days = item.daily.length;
    var spark = el("div", { "class": "spark", "aria-hidden": "true" });
    var row = el("tr", { "class": item.campaign === null ? "all-mail" : null, "data-campaign": name }, [
      el("td", { "class": "name", "data-label": "Campaign", "data-value": name }, [
        el("a", { href: campaignHref(item.campaign) }, [item.campaign === null ? "All mail" : name])
      ]),
      cell(item.sent ? item.sent : "–", { "data-label": "Sent", "data-value": item.sent }),
      cell(item.opens.unique, { "data-label": "Opened", "data-value": item.opens.unique }),
      cell(item.clicks.unique, { "data-label": "Clicked", "data-value": item.clicks.unique }),
      rateCell("Open rate, people", item.open_rate),
      rateCell("Click rate, people", item.click_rate),
      cell(percent(item.machine_share), {
        "data-label": "Machines", "data-value": item.machine_share === null ? -1 : item.machine_share
      }),
      el("td", { "class": "t", "data-label": "First event", "data-value": item.first || 0 }, [moment(item.first)]),
      el("td", { "class": "t", "data-label": "Last event", "data-value": item.last || 0 }, [moment(item.last)]),
      el("td", { "data-label": "Last " + days + " days" }, [
        spark,
        el("span", { "class": "visually-hidden" }, [
          "Opens per day: " + item.daily.map(function (d) { return d.opens; }).join(", ") +
          "; clicks per day: " + item.daily.map(function (d) { return d.clicks; }).join(", ") + "."
        ])
      ])
    ]);
    return row;
  }

  function drawSparklines(table, items) {
    var byName = {};
    items.forEach(function (item) { byName[item.campaign === null ? "" : String(item.campaign)] = item; });
    table.querySelectorAll("tr[data-campaign]").forEach(function (row) {
      var item = byName[row.dataset.campaign];
      var box = row.querySelector(".spark");
      if (item && box && !box.firstChild) { sparkline(box, item.daily); }
    });
  }

  function overview() {
    var table = document.getElementById("campaigns");
    var body = document.getElementById("campaign-rows");
    var search = document.getElementById("q");
    var noMatch = document.getElementById("no-match");
    var sort = { column: null, descending: true };

    function applySearch() {
      var text = search.value.trim().toLowerCase();
      var shown = 0;
      body.querySelectorAll("tr").forEach(function (row) {
        var match = !text || row.dataset.campaign.toLowerCase().indexOf(text) !== -1;
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      noMatch.hidden = !(text && !shown);
      if (!noMatch.hidden) { noMatch.textContent = "No campaign matches “" + search.value.trim() + "”."; }
    }

    function applySort() {
      if (sort.column === null) { return; }
      var header = table.tHead.rows[0].cells[sort.column];
      var numeric = header.dataset.sort === "number";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[sort.column].dataset.value, y = b.cells[sort.column].dataset.value;
        var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return sort.descending ? -order : order;
      });
      rows.forEach(function (row) { body.append(row); });
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
        if (index === sort.column) {
          th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
        } else {
          th.removeAttribute("aria-sort");
        }
      });
    }

    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (!th.dataset.sort) { return; }
      var button = el("button", { type: "button" }, [th.textContent]);
      button.addEventListener("click", function () {
        sort.descending = sort.column === index ? !sort.descending : th.dataset.sort === "number";
        sort.column = index;
        applySort();
      });
      th.textContent = "";
      th.append(button);
    });

    search.addEventListener("input", applySearch);
    drawSparklines(table, [data.all].concat(data.campaigns));
    applySearch();

    return function update(fresh) {
      data = fresh;
      replaceRows(document.getElementById("all-mail"), [overviewRow(fresh.all)]);
      replaceRows(body, fresh.campaigns.map(overviewRow));
      drawSparklines(table, [fresh.all].concat(fresh.campaigns));
      applySort();
      applySearch();
      if (fresh.all.last) { removeNotice(); }
    };
  }

  // -- one campaign ------------------------------------------------------------

  function campaign() {
    var box = document.getElementById("timeline-chart");
    var chart = timelineChart(box, data);

    return function update(fresh) {
      var stats = fresh.stats;
      var sent = stats.sent.total;
      setText("sent", sent ? sent : "–");
      ["opens", "clicks"].forEach(function (name) {
        setText(name + "-unique", stats[name].unique);
        setText(name + "-human", stats[name].human.unique);
        setText(name + "-machine", stats[name].machine.unique);
        setText(name + "-total", stats[name].total);
      });
      setText("open-rate", percent(sent ? stats.sent.open_rate.human : stats.open_rate.human));
      setText("click-rate", percent(sent ? stats.sent.click_rate.human : stats.click_through_rate.human));
      chart.setData(timelineColumns(fresh));
      replaceRows(
        document.querySelector("#timeline-table tbody"),
        fresh.timeline.filter(function (b) { return b.opens || b.clicks; }).map(function (b) {
          return el("tr", {}, [
            el("td", {}, [moment(b.start)]), cell(b.opens - b.opens_machine), cell(b.opens_machine),
            cell(b.clicks - b.clicks_machine), cell(b.clicks_machine)
          ]);
        }),
        "No events in this range.", 5
      );
      replaceRows(
        document.querySelector("#links tbody"),
        stats.links.slice(0, 20).map(function (link) {
          return el("tr", {}, [
            el("td", { "class": "url" }, [urlText(link.url)]),
            cell(link.unique), cell(link.human.unique), cell(link.total)
          ]);
        }),
        "No clicks in this range.", 4
      );
      replaceRows(
        document.querySelector("#machines tbody"),
        Object.keys(fresh.machine_labels).map(function (label) {
          return el("tr", {}, [el("td", {}, [label]), cell(fresh.machine_labels[label])]);
        }),
        "No machine traffic in this range.", 2
      );
      replaceRows(
        document.querySelector("#latest tbody"),
        fresh.latest.map(function (event) {
          var what = [kind(event.type)];
          if (event.machine) { what.push(" ", el("span", { "class": "machine" }, ["[machine: " + event.machine + "]"])); }
          var details = event.type === "link.clicked" ? [urlText(event.tracked_url), " "] : [];
          return el("tr", {}, [
            el("td", {}, [moment(event.occurred_at)]),
            el("td", {}, what),
            el("td", { "class": "url" }, details.concat(metadataText(event.metadata))),
            el("td", {}, [el("a", { href: withQuery(recipientUrl, { event: event.id }) }, ["timeline"])])
          ]);
        }),
        "No events in this range.", 4
      );
      if (stats.opens.total || stats.clicks.total || sent) { removeNotice(); }
    };
  }

  function removeNotice() {
    var notice = document.getElementById("empty");
    if (notice) { notice.remove(); }
  }

  // -- refreshing ----------------------------------------------------------------

  var update = page === "overview" ? overview() : page === "campaign" ? campaign() : null;
  if (!update || !refreshMs) { return; }
  var busy = false;

  function refresh() {
    if (document.hidden || busy) { return; }
    busy = true;
    fetch(jsonUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (fresh) { if (fresh) { update(fresh); } })
      .catch(function () { /* offline for a moment: the next round tries again */ })
      .then(function () { busy = false; });
  }

  setInterval(refresh, refreshMs);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
})();
