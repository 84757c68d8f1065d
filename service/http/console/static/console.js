// facebank console: the live parts only (Try a photo, Cameras). No framework, no outside
// request: every call goes to this server's /console routes with the page's CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

async function call(what, form) {
  const answer = await fetch(`/console/try/${what}`, {
    method: "POST",
    body: form,
    headers: { "X-CSRF-Token": csrf },
    credentials: "same-origin",
  });
  const body = await answer.json();
  if (!answer.ok) throw new Error(`${body.code}: ${body.message}`);
  return body.answer;
}

function fail(id, error) {
  document.getElementById(id).textContent = error.message;
}

function percent(value) {
  return `${Number(value).toFixed(1)}`;
}

function rows(pairs) {
  const table = el("table");
  for (const [name, value] of pairs) table.append(el("tr", {}, el("td", {}, name), el("td", {}, String(value))));
  return table;
}

function describeFace(face, index) {
  const pairs = [
    ["Confidence", percent(face.Confidence)],
    ["Pose (roll, yaw, pitch)", `${percent(face.Pose.Roll)}, ${percent(face.Pose.Yaw)}, ${percent(face.Pose.Pitch)}`],
    ["Quality (brightness, sharpness)", `${percent(face.Quality.Brightness)}, ${percent(face.Quality.Sharpness)}`],
  ];
  if (face.AgeRange) pairs.push(["AgeRange", `${face.AgeRange.Low}-${face.AgeRange.High}`]);
  for (const name of ["Gender", "Smile", "Eyeglasses", "Sunglasses", "Beard", "Mustache", "EyesOpen", "MouthOpen", "FaceOccluded"]) {
    if (face[name]) pairs.push([name, `${face[name].Value} (${percent(face[name].Confidence)})`]);
  }
  if (face.Emotions) {
    const top = [...face.Emotions].sort((a, b) => b.Confidence - a.Confidence)[0];
    pairs.push(["Emotion", `${top.Type} (${percent(top.Confidence)})`]);
  }
  if (face.EyeDirection) pairs.push(["EyeDirection (yaw, pitch)", `${percent(face.EyeDirection.Yaw)}, ${percent(face.EyeDirection.Pitch)}`]);
  pairs.push(["Landmarks", face.Landmarks.length]);
  return el("div", { class: "card", "data-testid": "face-detail" }, el("h3", {}, `Face ${index + 1}`), rows(pairs));
}

function drawPhoto(container, file, faces) {
  container.replaceChildren();
  const url = URL.createObjectURL(file);
  const image = el("img", { src: url, alt: "The photo analysed" });
  container.append(image);
  image.addEventListener("load", () => {
    const width = image.naturalWidth, height = image.naturalHeight;
    const overlay = svg("svg", { viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
    faces.forEach((face, index) => {
      const box = face.BoundingBox;
      overlay.append(svg("rect", {
        x: box.Left * width, y: box.Top * height, width: box.Width * width, height: box.Height * height,
        "data-testid": "face-box",
      }));
      const label = svg("text", { x: box.Left * width, y: Math.max(12, box.Top * height - 4), "font-size": Math.max(12, width / 60) });
      label.textContent = String(index + 1);
      overlay.append(label);
      for (const mark of face.Landmarks) {
        overlay.append(svg("circle", { cx: mark.X * width, cy: mark.Y * height, r: Math.max(1.5, width / 400), "data-testid": "landmark" }));
      }
    });
    container.append(overlay);
  });
}

async function detect(file) {
  document.getElementById("detect-error").textContent = "";
  const form = new FormData();
  form.append("Image", file);
  try {
    const answer = await call("detect", form);
    drawPhoto(document.getElementById("detect-photo"), file, answer.FaceDetails);
    const list = el("div", { class: "faces" });
    answer.FaceDetails.forEach((face, index) => list.append(describeFace(face, index)));
    const found = el("p", { "data-testid": "face-count" }, `${answer.FaceDetails.length} faces found.`);
    document.getElementById("detect-faces").replaceChildren(found, list);
  } catch (error) {
    fail("detect-error", error);
  }
}

function bar(similarity, threshold) {
  const node = el("span", { class: similarity >= threshold ? "bar" : "bar below" });
  node.style.width = `${Math.max(2, Math.round(similarity * 2))}px`; // CSSOM: allowed by the CSP
  return node;
}

function matchRow(kind, id, label, similarity, threshold) {
  return el("tr", { "data-testid": "match-row" },
    el("td", {}, kind), el("td", {}, el("code", {}, id)), el("td", {}, label || ""),
    el("td", { "data-testid": "similarity" }, percent(similarity)), el("td", {}, bar(similarity, threshold)));
}

function wire(formId, what, show) {
  const form = document.getElementById(formId);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = `${formId.replace("-form", "")}-error`;
    document.getElementById(error).textContent = "";
    try {
      show(await call(what, new FormData(form)), new FormData(form));
    } catch (problem) {
      fail(error, problem);
    }
  });
}

function setUp() {
  const input = document.getElementById("detect-file");
  if (input) {
    input.addEventListener("change", () => input.files[0] && detect(input.files[0]));
    const zone = document.querySelector(".drop");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      if (event.dataTransfer.files[0]) detect(event.dataTransfer.files[0]);
    });
  }
  wire("compare-form", "compare", (answer) => {
    const best = answer.FaceMatches[0];
    const text = best
      ? `Similarity ${percent(best.Similarity)}: ${best.Similarity >= 80 ? "the same person at Rekognition's default threshold (80)" : "below Rekognition's default threshold (80)"}.`
      : `No face in the second photo reaches the SimilarityThreshold (${answer.UnmatchedFaces.length} faces below it).`;
    document.getElementById("compare-result").replaceChildren(el("p", { "data-testid": "compare-similarity" }, text));
  });
  wire("search-form", "search", async (answer, sent) => {
    const threshold = Number(sent.get("FaceMatchThreshold") || 80);
    const table = el("table", {}, el("tr", {}, el("th", {}, "kind"), el("th", {}, "id"), el("th", {}, "ExternalImageId / user"), el("th", {}, "Similarity"), el("th", {}, "")));
    for (const match of answer.FaceMatches) {
      table.append(matchRow("face", match.Face.FaceId, match.Face.ExternalImageId, match.Similarity, threshold));
    }
    const result = document.getElementById("search-result");
    result.replaceChildren(el("p", {}, `${answer.FaceMatches.length} faces at or above ${threshold}.`), table);
    const users = new FormData();
    users.append("CollectionId", sent.get("CollectionId"));
    users.append("Image", sent.get("Image"));
    users.append("UserMatchThreshold", String(threshold));
    try {
      const found = await call("search-users", users);
      for (const match of found.UserMatches) table.append(matchRow("user", match.User.UserId, match.User.UserStatus, match.Similarity, threshold));
    } catch (problem) {
      result.append(el("p", { class: "error" }, `Users: ${problem.message}`));
    }
  });
  wire("index-form", "index", (answer) => {
    const list = el("ul", {});
    for (const record of answer.FaceRecords) list.append(el("li", { "data-testid": "indexed-face" }, `indexed ${record.Face.FaceId}`));
    for (const face of answer.UnindexedFaces) list.append(el("li", {}, `not indexed: ${face.Reasons.join(", ")}`));
    document.getElementById("index-result").replaceChildren(el("p", {}, `${answer.FaceRecords.length} indexed, ${answer.UnindexedFaces.length} not.`), list);
  });
  const processors = document.getElementById("processors");
  if (processors) setInterval(refreshCameras, 2000);
}

async function refreshCameras() {
  let body;
  try {
    const answer = await fetch("/console/cameras.json", { credentials: "same-origin" });
    if (!answer.ok) return;
    body = await answer.json();
  } catch (error) {
    return;
  }
  for (const p of body.processors) {
    const row = document.querySelector(`tr[data-name="${CSS.escape(p.Name)}"]`);
    if (!row) continue;
    row.querySelector('[data-field="status"]').textContent = p.Status + (p.StatusMessage ? `: ${p.StatusMessage}` : "");
    row.querySelector('[data-field="camera"]').textContent = p.here
      ? `${p.connected ? "connected" : "not connected"}, ${p.frames_analysed} frames analysed`
      : "on another replica";
    row.querySelector('[data-field="latency"]').textContent = p.latency_s === null ? "" : `${p.latency_s} s`;
    row.querySelector('[data-field="latest"]').textContent = p.latest
      .map((record) => record.faces.map((f) => f.match ? `${f.match} (${f.Similarity})` : "unknown").join(" "))
      .join(" · ");
  }
}

setUp();
