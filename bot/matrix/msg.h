/*
 * msg.h - building a chat message: a plain `body` and an HTML
 * `formatted_body` side by side, where every interpolated value is escaped.
 *
 * Each msg_* call appends a self-contained piece to both; the builder keeps
 * the boundaries so that a message over the size limit is cut between
 * pieces (never inside a tag or a UTF-8 sequence) and says it was cut.
 */
#ifndef BB_MSG_H
#define BB_MSG_H

#include <stddef.h>

#include "util.h"

/* Matrix events are limited to 65536 bytes; keep room for the envelope. */
#define MSG_MAX_CONTENT	60000

struct cJSON;

struct msg {
	struct buf	 plain;
	struct buf	 html;
	size_t		*cut_plain;	/* piece boundaries */
	size_t		*cut_html;
	size_t		 ncuts;
	int		 truncated;
};

void msg_init(struct msg *m);
void msg_release(struct msg *m);

/* Text, escaped in the HTML. */
void msg_text(struct msg *m, const char *s);
void msg_textf(struct msg *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Text in bold / code (escaped). */
void msg_bold(struct msg *m, const char *s);
void msg_code(struct msg *m, const char *s);
/* A preformatted block (escaped). */
void msg_pre(struct msg *m, const char *s);
/* A line break. */
void msg_nl(struct msg *m);
/* Append everything src holds (src is unchanged). */
void msg_append(struct msg *m, const struct msg *src);
/* A link to url with escaped label. */
void msg_link(struct msg *m, const char *url, const char *label);

/* Escape text for HTML (caller frees). */
char *msg_html_escape(const char *s);

/*
 * The m.room.message content of an m.notice: body, format,
 * formatted_body.  Keeps the serialised content under max bytes by
 * dropping trailing pieces and appending a note.  Caller frees.
 */
struct cJSON *msg_content(struct msg *m, size_t max);

/*
 * Relations.  msg_set_thread makes content a reply in the thread rooted at
 * root, with an m.in_reply_to fallback to reply_to.  msg_make_edit wraps
 * new content into an m.replace edit of event_id (returns new object,
 * takes ownership of new_content).
 */
void msg_set_thread(struct cJSON *content, const char *root,
    const char *reply_to);
struct cJSON *msg_make_edit(struct cJSON *new_content, const char *event_id);
/* m.reaction content annotating event_id with key. */
struct cJSON *msg_reaction(const char *event_id, const char *key);
/* Shrink a message content to fit after a 413: returns 0 if it changed. */
int msg_shrink(struct cJSON *content);

#endif
