"""Commands in the room: acknowledgement, thread replies, who may command."""
import time

from harness import (ALICE, BOB, BOT, EVE, check, check_thread_reply, rel,
                     replies, test)


def reaction_to(events, event_id):
    return [e for e in events if e['type'] == 'm.reaction'
            and rel(e).get('event_id') == event_id]


@test
def help_and_status_answer_in_thread(t):
    t.bot().start()
    cmd = t.hs.send(t.room_id, ALICE, '!help')
    evs = t.hs.wait(t.room_id, 1)
    reply = replies(evs)[0]
    check_thread_reply(reply, cmd, cmd)
    body = reply['content']['body']
    for c in ('!help', '!status'):
        check(c in body, '%s missing from help: %r' % (c, body))
    cmd2 = t.hs.send(t.room_id, BOB, '!status')
    evs = t.hs.wait(t.room_id, 2)
    st = replies(evs)[-1]
    check_thread_reply(st, cmd2, cmd2)
    for word in ('backupbot 0.', 'uptime', t.hs.url, 'outbox: '):
        check(word in st['content']['body'], '%r missing from status: %r'
              % (word, st['content']['body']))


@test
def help_for_one_command_and_unknown_commands(t):
    t.bot().start()
    t.hs.send(t.room_id, ALICE, '!help status')
    t.hs.send(t.room_id, ALICE, '!stauts')
    t.hs.send(t.room_id, ALICE, '!frobnicate now')
    t.hs.send(t.room_id, ALICE, '!status extra args')
    t.hs.send(t.room_id, ALICE, '!help "unterminated')
    evs = replies(t.hs.wait(t.room_id, 5))
    bodies = [e['content']['body'] for e in evs]
    check('!status' in bodies[0] and 'everything at a glance' in bodies[0], bodies[0])
    check('did you mean !status' in bodies[1], bodies[1])
    check('Unknown command "frobnicate"' in bodies[2] and '!help' in bodies[2], bodies[2])
    check(bodies[3].startswith('Usage: !status'), bodies[3])
    check('unterminated' in bodies[4], bodies[4])


@test
def reply_inside_a_thread_stays_in_that_thread(t):
    t.bot().start()
    root = t.hs.send(t.room_id, ALICE, 'backups tonight?')
    cmd = t.hs.send(t.room_id, ALICE, content={
        'msgtype': 'm.text', 'body': '!status',
        'm.relates_to': {'rel_type': 'm.thread', 'event_id': root,
                         'is_falling_back': True,
                         'm.in_reply_to': {'event_id': root}}})
    reply = replies(t.hs.wait(t.room_id, 1))[0]
    check_thread_reply(reply, root, cmd)


@test
def html_is_escaped(t):
    t.bot().start()
    cmd = t.hs.send(t.room_id, ALICE, '!<b>x</b>&amp;')
    reply = replies(t.hs.wait(t.room_id, 1))[0]
    html = reply['content']['formatted_body']
    check('<b>x</b>' not in html and '&lt;b&gt;x&lt;/b&gt;&amp;amp;' in html,
          'command text not escaped in HTML: %r' % html)
    check('<b>x</b>&amp;' in reply['content']['body'], reply['content']['body'])
    check(rel(reply)['event_id'] == cmd, 'wrong thread')


@test
def strangers_get_one_refusal_and_nothing_runs(t):
    b = t.bot().start()
    e1 = t.hs.send(t.room_id, EVE, '!help')
    t.hs.send(t.room_id, EVE, '!status')
    t.hs.send(t.room_id, EVE, '!help')
    # an admin command afterwards proves the bot has read eve's messages
    t.hs.send(t.room_id, ALICE, '!status')
    evs = t.hs.wait(t.room_id, 2)
    msgs = replies(evs)
    check(len(msgs) == 2, 'expected one refusal and one status: %r' % msgs)
    check('only the configured admins' in msgs[0]['content']['body'], msgs[0])
    check_thread_reply(msgs[0], e1, e1)
    check(not reaction_to(evs, e1), 'a stranger got a 👀')
    b.wait_log('refused a command from %s' % EVE, count=3)


@test
def ignores_notices_edits_own_and_plain_messages(t):
    t.bot().start()
    t.hs.send(t.room_id, ALICE, content={'msgtype': 'm.notice', 'body': '!help'})
    orig = t.hs.send(t.room_id, ALICE, 'hello !help')
    t.hs.send(t.room_id, ALICE, content={
        'msgtype': 'm.text', 'body': '* !help',
        'm.new_content': {'msgtype': 'm.text', 'body': '!help'},
        'm.relates_to': {'rel_type': 'm.replace', 'event_id': orig}})
    own = t.hs.send(t.room_id, BOT, '!help')     # its own message
    t.hs.send(t.room_id, ALICE, '! help')
    last = t.hs.send(t.room_id, ALICE, '!status')
    msgs = [m for m in replies(t.hs.wait(t.room_id, 2)) if m['event_id'] != own]
    check(len(msgs) == 1 and rel(msgs[0])['event_id'] == last,
          'the bot answered something it should ignore: %r' % msgs)


@test
def reply_fallback_is_stripped(t):
    t.bot().start()
    quoted = t.hs.send(t.room_id, BOB, 'dump done?')
    cmd = t.hs.send(t.room_id, ALICE, content={
        'msgtype': 'm.text',
        'body': '> <%s> dump done?\n\n!status' % BOB,
        'format': 'org.matrix.custom.html',
        'formatted_body': '<mx-reply><blockquote>dump done?</blockquote></mx-reply>!status',
        'm.relates_to': {'m.in_reply_to': {'event_id': quoted}}})
    msgs = replies(t.hs.wait(t.room_id, 1))
    check('uptime' in msgs[0]['content']['body'], msgs[0])
    check(rel(msgs[0])['event_id'] == cmd, 'thread root is not the command')


@test
def custom_prefix(t):
    t.bot(prefix='bb:').start()
    t.hs.send(t.room_id, ALICE, '!help')
    cmd = t.hs.send(t.room_id, ALICE, 'bb:help')
    msgs = replies(t.hs.wait(t.room_id, 1))
    check(len(msgs) == 1 and rel(msgs[0])['event_id'] == cmd, msgs)
    check('bb:status' in msgs[0]['content']['body'], msgs[0])


@test
def min_power_level_is_enforced(t):
    # bob is an admin with power 50; the floor is 60
    t.bot(extra='min_power_level = 60').start()
    t.hs.send(t.room_id, BOB, '!status')
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    msgs = replies(t.hs.wait(t.room_id, 2))
    check('only the configured admins' in msgs[0]['content']['body'], msgs)
    check(rel(msgs[1])['event_id'] == cmd and 'uptime' in msgs[1]['content']['body'], msgs)


@test
def rooms_not_configured_are_ignored(t):
    other = t.hs.room(creator=ALICE, members=[ALICE, BOT])
    t.bot().start()
    t.hs.send(other, ALICE, '!help')
    cmd = t.hs.send(t.room_id, ALICE, '!help')
    t.hs.wait(t.room_id, 1)
    check(t.hs.events(other, sender=BOT) == [], 'answered in an unconfigured room')
    check(rel(replies(t.hs.events(t.room_id, sender=BOT))[0])['event_id'] == cmd, 'wrong reply')


@test
def joins_on_admin_invite_only(t):
    r1 = t.hs.room(creator=ALICE, members=[ALICE])
    r2 = t.hs.room(creator=EVE, members=[EVE])
    r3 = t.hs.room(creator=ALICE, members=[ALICE])   # not configured
    b = t.bot(rooms=[t.room_id, r1, r2]).start()
    t.hs.call('POST', '/_test/rooms/%s/invite' % r3, {'sender': ALICE, 'user_id': BOT})
    t.hs.call('POST', '/_test/rooms/%s/invite' % r2, {'sender': EVE, 'user_id': BOT})
    t.hs.call('POST', '/_test/rooms/%s/invite' % r1, {'sender': ALICE, 'user_id': BOT})
    b.wait_log('joined %s' % r1)
    cmd = t.hs.send(r1, ALICE, '!status')
    msgs = replies(t.hs.wait(r1, 1))
    check(rel(msgs[0])['event_id'] == cmd, msgs)
    members = [e for e in t.hs.events(r2) + t.hs.events(r3)
               if e['type'] == 'm.room.member' and e.get('state_key') == BOT
               and e['content'].get('membership') == 'join']
    check(members == [], 'joined a room on a stranger\'s or unconfigured invite')
    check('rejecting an invite to %s' % r2 in b.log_text(), 'no log of the rejected invite')
    # rejected with /leave, as a real client does, not left hanging
    for room in (r2, r3):
        mine = [e for e in t.hs.events(room, state=True)
                if e['type'] == 'm.room.member' and e.get('state_key') == BOT]
        check(mine and mine[-1]['content']['membership'] == 'leave' and mine[-1]['sender'] == BOT,
              'invite to %s not rejected: %r' % (room, mine))


@test
def room_alias_in_config(t):
    aliased = t.hs.room(creator=ALICE, members=[ALICE, BOT], alias='#ops:localhost')
    t.bot(rooms=['#ops:localhost']).start()
    cmd = t.hs.send(aliased, ALICE, '!status')
    msgs = replies(t.hs.wait(aliased, 1))
    check(rel(msgs[0])['event_id'] == cmd and '#ops:localhost' in msgs[0]['content']['body'], msgs)


@test
def unicode_and_long_commands(t):
    t.bot().start()
    t.hs.send(t.room_id, ALICE, '!help bäckup 💾')
    t.hs.send(t.room_id, ALICE, '!help ' + 'x' * 5000)
    t.hs.send(t.room_id, ALICE, '!help \u202eevil')
    msgs = replies(t.hs.wait(t.room_id, 3))
    b = [m['content']['body'] for m in msgs]
    check('Usage: !help' in b[0], b[0])
    check('too long' in b[1], b[1])
    check('invalid UTF-8 or control' in b[2], b[2])


@test
def only_commands_that_start_a_job_get_a_eyes_reaction(t):
    # An answer that is ready at once is its own acknowledgement: no 👀
    # that it would wait behind.  A command whose answer comes from a job
    # (backup, verify, restore) gets the 👀 first.
    t.bot().start()
    quick = [t.hs.send(t.room_id, ALICE, c) for c in
             ('!help', '!status', '!list', '!frobnicate', '!backup', '!pause nosuch')]
    slow = [t.hs.send(t.room_id, ALICE, c) for c in
            ('!backup nosuch', '!verify nosuch', '!restore nosuch')]
    evs = t.hs.wait(t.room_id, len(quick) + 2 * len(slow))
    time.sleep(0.5)             # anything more would have come by now
    evs = t.hs.events(t.room_id, sender=BOT)
    for cmd in quick:
        check(not reaction_to(evs, cmd), 'a 👀 on a command answered at once: %r' % evs)
        check(len([e for e in replies(evs) if rel(e).get('event_id') == cmd]) == 1,
              'no single answer to %s: %r' % (cmd, evs))
    for cmd in slow:
        acks = reaction_to(evs, cmd)
        check(len(acks) == 1 and rel(acks[0]).get('key') == '👀' and
              rel(acks[0]).get('rel_type') == 'm.annotation', 'no 👀 on %s: %r' % (cmd, evs))
        answer = [e for e in replies(evs) if rel(e).get('event_id') == cmd]
        check(len(answer) == 1 and 'No target' in answer[0]['content']['body'],
              'the answer to %s: %r' % (cmd, answer))
        check(evs.index(acks[0]) < evs.index(answer[0]), 'the 👀 came after the answer')
    check(len(evs) == len(quick) + 2 * len(slow), 'events from the bot: %r' % evs)
