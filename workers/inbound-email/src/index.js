// Cloudflare Email Worker (deployed by the operator with wrangler; see README.md beside this file).
//
// For each message Cloudflare's Email Routing hands it: parse it with postal-mime, post it as JSON to the platform
// service's POST /hooks/email/inbound, signed `x-nextmavens-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" keyed by INBOUND_SECRET>` (nextmavens/email/inboundauth.py checks it). The service stores it in the
// project whose manifest lists the recipient; it answers 404 for an address no project lists, and the worker then
// rejects the message. Any other failure throws, so Cloudflare does not accept the message (the sender's server
// retries later). Attachments are described (name, type, size, sha256) and, up to MAX_ATTACHED_BYTES in all, sent
// too: the service offloads them to Cloudinary and keeps their URL. Each one beyond that goes once the message is
// stored, in its own signed post to /hooks/email/inbound/attachment ({delivery_id, to, index, content_base64}); the
// service uploads it (its Cloudinary secret never reaches the worker). A failed one throws, so Cloudflare delivers
// the message again: the message is then stored once, and attachments already uploaded answer 200 at once.
//
// Bindings: PLATFORM_URL (https://platform.<domain>), INBOUND_SECRET (a secret: `wrangler secret put`).

import PostalMime from "postal-mime";

const MAX_RAW_BYTES = 10 * 1024 * 1024;
const MAX_PART_CHARS = 1000000;
// Attachments' content travels (base64) up to this many bytes in all, under the service's webhook body limit; the
// service offloads it to Cloudinary. Larger ones are described only.
const MAX_ATTACHED_BYTES = 512 * 1024;

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sign(secret, timestamp, bodyBytes) {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const prefix = new TextEncoder().encode(`${timestamp}.`);
  const signed = new Uint8Array(prefix.length + bodyBytes.length);
  signed.set(prefix, 0);
  signed.set(bodyBytes, prefix.length);
  return `t=${timestamp},v1=${hex(await crypto.subtle.sign("HMAC", key, signed))}`;
}

function cut(text) {
  return typeof text === "string" ? text.slice(0, MAX_PART_CHARS) : null;
}

// The message's JSON body, and the attachments left out of it (index, bytes) to post on their own.
export async function describe(message, raw) {
  const parsed = await PostalMime.parse(raw);
  const attachments = [];
  const pending = [];
  let attached = 0;
  for (const item of parsed.attachments || []) {
    const raw = typeof item.content === "string" ? new TextEncoder().encode(item.content) : item.content;
    const content = new Uint8Array(raw);
    const described = {
      filename: item.filename || null,
      mime_type: item.mimeType || null,
      size: content.byteLength,
      sha256: hex(await crypto.subtle.digest("SHA-256", content)),
    };
    if (attached + content.byteLength <= MAX_ATTACHED_BYTES) {
      attached += content.byteLength;
      described.content_base64 = base64(content);
    } else {
      pending.push({ index: attachments.length, content });
    }
    attachments.push(described);
  }
  const body = {
    // the same message delivered again (a retry) has the same id: the service stores it once per recipient
    delivery_id: hex(await crypto.subtle.digest("SHA-256", raw)),
    to: message.to,
    from: message.from,
    subject: parsed.subject || null,
    message_id: parsed.messageId || null,
    text: cut(parsed.text),
    html: cut(parsed.html),
    headers: (parsed.headers || []).slice(0, 200).map((h) => ({ key: h.key, value: h.value })),
    attachments,
  };
  return { body, pending };
}

async function post(env, path, payload) {
  const body = new TextEncoder().encode(JSON.stringify(payload));
  const timestamp = Math.floor(Date.now() / 1000);
  return fetch(`${env.PLATFORM_URL.replace(/\/+$/, "")}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-nextmavens-signature": await sign(env.INBOUND_SECRET, timestamp, body),
    },
    body,
  });
}

export default {
  async email(message, env) {
    if (message.rawSize > MAX_RAW_BYTES) {
      await message.setReject("message too large");
      return;
    }
    const raw = await new Response(message.raw).arrayBuffer();
    const { body, pending } = await describe(message, raw);
    const response = await post(env, "/hooks/email/inbound", body);
    if (response.status === 404) {
      await message.setReject("no such recipient");
      return;
    }
    if (!response.ok) {
      throw new Error(`the platform answered ${response.status}`);
    }
    for (const { index, content } of pending) {
      const payload = { delivery_id: body.delivery_id, to: body.to, index, content_base64: base64(content) };
      const answer = await post(env, "/hooks/email/inbound/attachment", payload);
      if (answer.status === 422) {
        // its content does not match its description: delivering again cannot change that; it stays described
        console.log(`attachment ${index} refused by the platform (422)`);
      } else if (!answer.ok) {
        throw new Error(`the platform answered ${answer.status} for attachment ${index}`);
      }
    }
  },
};
