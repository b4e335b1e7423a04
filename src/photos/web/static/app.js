// Summit Photos: progressive enhancement only; every page works without this file.
// - swaps in thumbnails of posts still being processed (polls the JSON API),
// - likes and unlikes without a page reload (falls back to the plain form on any error),
// - asks before destructive form submissions, checks upload sizes and previews the chosen photo,
// - suggests people, tags and posts under the header's search box as you type (a listbox over the
//   search API); the box stays a plain GET form that works without this file.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var POLL_TRIES = 60;

  function pollThumbnails() {
    var waiting = {};
    document.querySelectorAll("img[data-pending-post]").forEach(function (img) {
      var id = img.getAttribute("data-pending-post");
      if (/^\d{1,20}$/.test(id)) (waiting[id] = waiting[id] || []).push(img);
    });
    var tries = 0;

    function swap(imgs, thumbs) {
      imgs.forEach(function (img) {
        var url = thumbs[img.getAttribute("data-size") || "medium"];
        if (url) {
          img.src = url;
          img.alt = img.alt.replace(" (processing)", "");
        }
        img.removeAttribute("data-pending-post");
        img.classList.remove("pending");
      });
    }

    function round() {
      var ids = Object.keys(waiting);
      if (!ids.length || tries++ >= POLL_TRIES) return;
      Promise.all(ids.map(function (id) {
        return fetch("/api/v1/posts/" + id, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) {
            if (r.status === 404) { delete waiting[id]; return null; }
            return r.ok ? r.json() : null;
          })
          .then(function (post) {
            if (post && post.thumbnails && post.thumbnails.ready) {
              swap(waiting[id] || [], post.thumbnails);
              delete waiting[id];
            }
          })
          .catch(function () { /* try again next round */ });
      })).then(function () {
        if (Object.keys(waiting).length) setTimeout(round, POLL_MS);
      });
    }
    setTimeout(round, POLL_MS);
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function enhanceLikes() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.matches || !form.matches("form[data-like]") || !window.fetch) return;
      event.preventDefault();
      var id = form.getAttribute("data-like");
      var doField = form.querySelector("input[name=do]");
      var like = doField.value !== "unlike";
      var button = form.querySelector("button");
      button.disabled = true;
      fetch("/api/v1/posts/" + id + "/like", {
        method: like ? "PUT" : "DELETE",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": form.querySelector("input[name=csrf_token]").value }
      }).then(function (r) {
        if (!r.ok) throw new Error("like failed: " + r.status);
        return r.json();
      }).then(function (data) {
        doField.value = data.liked ? "unlike" : "like";
        button.classList.toggle("liked", data.liked);
        button.setAttribute("aria-pressed", data.liked ? "true" : "false");
        button.querySelector(".heart").textContent = data.liked ? "\u2665" : "\u2661";
        button.querySelector(".like-label").textContent = data.liked ? "Unlike" : "Like";
        document.querySelectorAll('[data-like-count="' + id + '"]').forEach(function (el) {
          el.textContent = plural(data.like_count, "like");
        });
        button.disabled = false;
      }).catch(function () {
        button.disabled = false;
        form.submit(); // the plain form does the same and shows any error page
      });
    });
  }

  function enhanceForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute && form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
    document.querySelectorAll("form[data-upload]").forEach(function (form) {
      var input = form.querySelector("input[type=file]");
      var preview = form.querySelector("img.preview");
      // the server's limit in bytes and its own refusal (photos/uploads.py): one unit, one message
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var tooLarge = input.getAttribute("data-too-large") || "";
      tooLarge = tooLarge.charAt(0).toUpperCase() + tooLarge.slice(1);
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        input.setCustomValidity(file && max && file.size > max ? tooLarge : "");
        input.reportValidity();
        if (preview) {
          if (preview.src.indexOf("blob:") === 0) URL.revokeObjectURL(preview.src);
          if (file && /^image\//.test(file.type)) {
            preview.src = URL.createObjectURL(file);
            preview.hidden = false;
          } else {
            preview.hidden = true;
          }
        }
      });
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (!button) return;
        button.setAttribute("data-label", button.textContent);
        setTimeout(function () { button.disabled = true; button.textContent = "Uploading…"; }, 0);
      });
      window.addEventListener("pageshow", function () { // back from the next page: usable again
        var button = form.querySelector("button[type=submit]");
        if (button && button.disabled) { button.disabled = false; button.textContent = button.getAttribute("data-label"); }
      });
    });
  }

  var SUGGEST_MS = 200; // debounce: a request once typing pauses this long
  var SUGGEST_LIMIT = 8;

  function suggestionOf(result) {
    // what an option shows and where it leads; text only (set with textContent, never as markup)
    if (result.kind === "user" && result.user) {
      var u = result.user;
      return { href: "/u/" + encodeURIComponent(u.username), label: u.display_name || u.username,
               detail: "@" + u.username, kind: "Person" };
    }
    if (result.kind === "tag" && result.tag) {
      return { href: "/tags/" + encodeURIComponent(result.tag.tag), label: "#" + result.tag.tag,
               detail: plural(result.tag.posts, "post"), kind: "Tag" };
    }
    if (result.kind === "post" && result.post) {
      var caption = result.post.caption.replace(/\s+/g, " ").trim();
      if (caption.length > 60) caption = caption.slice(0, 59) + "\u2026";
      return { href: "/p/" + encodeURIComponent(result.post.id), label: caption || "Photo",
               detail: "@" + result.post.author.username, kind: "Post" };
    }
    return null;
  }

  function enhanceSearch() {
    var input = document.querySelector("input[data-typeahead]");
    if (!input || !window.fetch) return;
    var form = input.form;
    var list = document.createElement("ul");
    var status = document.createElement("div");
    var listId = input.id + "-suggestions";
    list.id = listId;
    list.className = "typeahead";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Suggestions");
    list.hidden = true;
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    form.appendChild(list);
    form.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listId);

    var timer = null;
    var asked = 0; // the number of the latest request: older answers are dropped
    var shown = ""; // the text whose suggestions are shown
    var active = -1;
    var controller = null;

    function options() { return list.querySelectorAll("[role=option]"); }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function activate(index) {
      var all = options();
      if (!all.length) return;
      active = (index + all.length) % all.length;
      all.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === active ? "true" : "false");
        option.classList.toggle("active", i === active);
      });
      input.setAttribute("aria-activedescendant", all[active].id);
      all[active].scrollIntoView({ block: "nearest" });
    }

    function show(results, text) {
      list.textContent = "";
      active = -1;
      input.removeAttribute("aria-activedescendant");
      results.map(suggestionOf).filter(Boolean).forEach(function (s, i) {
        var option = document.createElement("li");
        option.id = listId + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.setAttribute("data-href", s.href);
        var kind = document.createElement("span");
        kind.className = "typeahead-kind";
        kind.textContent = s.kind;
        var label = document.createElement("span");
        label.className = "typeahead-label";
        label.textContent = s.label;
        var detail = document.createElement("span");
        detail.className = "typeahead-detail";
        detail.textContent = s.detail;
        option.appendChild(kind);
        option.appendChild(label);
        option.appendChild(detail);
        list.appendChild(option);
      });
      shown = text;
      var count = options().length;
      status.textContent = count ? plural(count, "suggestion") + ": use the arrow keys to choose one" : "No suggestions";
      list.hidden = !count;
      input.setAttribute("aria-expanded", count ? "true" : "false");
    }

    function ask() {
      var text = input.value.trim();
      if (text.length < 2) { close(); shown = ""; return; }
      if (text === shown && !list.hidden) return;
      var mine = ++asked;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      fetch("/api/v1/search?limit=" + SUGGEST_LIMIT + "&q=" + encodeURIComponent(text), {
        credentials: "same-origin", headers: { Accept: "application/json" }, signal: controller ? controller.signal : undefined
      }).then(function (r) {
        return r.ok ? r.json() : { items: [] }; // a 422 (too long) or a 503: no suggestions, the form still works
      }).then(function (page) {
        if (mine === asked && input.value.trim() === text) show(page.items || [], text);
      }).catch(function () { /* aborted by a newer request, or offline: nothing to show */ });
    }

    function go(option) {
      if (option) window.location.assign(option.getAttribute("data-href"));
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, SUGGEST_MS);
    });
    input.addEventListener("keydown", function (event) {
      var open = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!open) { if (options().length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } else { ask(); return; } }
        event.preventDefault();
        activate(active === -1 ? (event.key === "ArrowDown" ? 0 : -1) : active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault(); // the chosen suggestion, not the results page
        go(options()[active]);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });
    list.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep the focus in the box
    list.addEventListener("click", function (event) {
      var option = event.target.closest && event.target.closest("[role=option]");
      go(option);
    });
    input.addEventListener("blur", function () { close(); });
    input.addEventListener("focus", function () {
      if (options().length && input.value.trim() === shown) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
    });
  }

  function start() {
    pollThumbnails();
    enhanceLikes();
    enhanceForms();
    enhanceSearch();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
