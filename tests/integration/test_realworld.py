"""What real homeservers do (Synapse as the model): a cached /sync, clock
skew between hosts, kicks, redactions, expiring tokens, rate limits."""
import json
import os
import re
import time

import subprocess

from harness import ALICE, BACKUPBOT, BOB, BOT, EVE, check, rel, replies, test
from test_schedule import fake_clock

def answered(hs, room):
    """Command event ids the bot answered, in the order of its replies.
    (Answers ready at once come alone, without a 👀: one event each.)"""
    return [rel(e)['m.in_reply_to']['event_id'] for e in
            replies(hs.events(room, sender=BOT)) if 'm.in_reply_to' in rel(e)]


def skewed(bot, offset):
    """Run `bot` with its wall clock `offset` seconds off (libfaketime;
    its monotonic clock stays true, as a skewed host's does)."""
    bot.env = fake_clock(time.time() + offset)
    return bot


def run_then_stop(t):
    """A first bot answers one command and stops: its /sync answers are now
    in the homeserver's 2-minute response cache."""
    a = t.bot(name='first').start()
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    a.stop()
    return cmd


@test
def second_first_start_within_sync_cache_runs_no_history(t):
    old = run_then_stop(t)
    # Another fresh state_dir, same device, within the cache window: its
    # first /syncs are the first bot's, answered from the cache.
    b = t.bot(name='second').start()
    b.wait_log('first start')
    new = t.hs.send(t.room_id, BOB, '!help')
    t.hs.wait(t.room_id, 2)
    got = answered(t.hs, t.room_id)
    check(got == [old, new], 'history ran again or a new command was lost: %r' % got)
    hits = [r for r in t.hs.call('GET', '/_test/requests')['requests']
            if '/sync' in r['path']]
    check(len(hits) >= 3, 'the test never synced: %r' % hits)


def skew_case(t, offset):
    old = run_then_stop(t)
    b = skewed(t.bot(name='skewed'), offset).start()
    b.wait_log('first start')
    new = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 2)
    got = answered(t.hs, t.room_id)
    check(got == [old, new], 'clock %+ds: history ran or the new command was dropped: %r'
          % (offset, got))
    check('backlog_max_age' not in b.log_text(), 'clock %+ds: a new command counted as old' % offset)


@test
def bot_clock_five_minutes_slow_runs_no_history(t):
    skew_case(t, -300)


@test
def bot_clock_five_minutes_fast_drops_no_new_command(t):
    skew_case(t, 300)


def membership(hs, room, user=BOT):
    mine = [e for e in hs.events(room, state=True)
            if e['type'] == 'm.room.member' and e.get('state_key') == user]
    return mine[-1]['content']['membership'] if mine else None


@test
def kicked_bot_says_so_elsewhere_and_rejoins_on_an_admins_invite(t):
    other = t.hs.room(creator=ALICE, members=[ALICE, BOT])
    b = t.bot(rooms=[t.room_id, other]).start()
    t.hs.call('POST', '/_test/kick', {'room_id': t.room_id, 'sender': BOB, 'user_id': BOT,
                                       'reason': 'cleanup'})
    note = replies(t.hs.wait(other, 1))[0]['content']['body']
    check('removed from' in note and BOB in note and 'cleanup' in note, 'kick not told: %r' % note)
    b.wait_log('removed from')
    # a stranger's invite is rejected; an admin's is followed
    t.hs.call('POST', '/_test/rooms/%s/invite' % t.room_id, {'sender': EVE, 'user_id': BOT})
    b.wait_log('rejecting an invite to %s' % t.room_id)
    deadline = time.time() + 10
    while membership(t.hs, t.room_id) != 'leave' and time.time() < deadline:
        time.sleep(0.05)
    check(membership(t.hs, t.room_id) == 'leave', 'stranger\'s invite not rejected')
    t.hs.call('POST', '/_test/rooms/%s/invite' % t.room_id, {'sender': ALICE, 'user_id': BOT})
    b.wait_log('joined %s' % t.room_id)
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'no answer after the re-invite')
    # a ban is told as well
    t.hs.call('POST', '/_test/kick', {'room_id': t.room_id, 'sender': ALICE, 'user_id': BOT,
                                       'membership': 'ban'})
    t.hs.wait(other, 2)
    check('banned from' in replies(t.hs.events(other, sender=BOT))[-1]['content']['body'],
          'ban not told')


@test
def power_levels_unreadable_at_start_are_retried_not_dropped(t):
    # One 503 on the state request used to count as "no power levels":
    # with min_power_level every admin was refused until a restart.
    t.hs.fault('503', count=2, path_regex='state/m.room.power_levels')
    b = t.bot(extra='min_power_level = 50').start()
    check('retrying' in b.log_text(), 'the 503 was not retried')
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'the admin was refused')
    check('refused' not in b.log_text(), 'the admin was refused: %s' % b.log_text()[-500:])


@test
def rotated_access_token_file_is_read_again_without_a_crash_loop(t):
    b = t.bot().start()
    first = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    # the operator's token is revoked: every call now answers 401
    t.hs.fault('unknown_token', invalidate=True, path_regex='/sync')
    b.wait_log('still no valid access token', timeout=30)
    check(b.proc.poll() is None, 'the daemon exited on a 401')
    check(b.log_text().count('put a valid token for') == 1,
          'not one clear line: %s' % b.log_text()[-1500:])
    t.hs.user(BOT, password='unused', access_token='syt_rotated_token_2', device_id='TESTDEVICE')
    with open(os.path.join(t.tmp, 'token'), 'w') as f:
        f.write('syt_rotated_token_2\n')
    b.wait_log('using the new access token', timeout=90)
    second = t.hs.send(t.room_id, BOB, '!help')
    t.hs.wait(t.room_id, 2)
    check(answered(t.hs, t.room_id) == [first, second], 'not answered after the rotation')


@test
def expiring_tokens_are_refreshed_and_a_hard_logout_logs_in_again(t):
    t.hs.config(token_lifetime_ms=3000)
    b = t.bot(auth='password').start()
    b.wait_log('access token refreshed', count=2, timeout=20)     # before expiry
    c1 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    # soft logout (expired now): /refresh, not a new login
    t.hs.call('POST', '/_test/expire_tokens', {'user_id': BOT})
    refreshed = b.log_text().count('access token refreshed')
    b.wait_log('access token refreshed', count=refreshed + 1, timeout=20)
    c2 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 2)
    # hard logout: the password logs in again, on the same device
    t.hs.fault('unknown_token', invalidate=True, soft_logout=False, path_regex='/sync')
    b.wait_log('logged in again', timeout=30)
    c3 = t.hs.send(t.room_id, BOB, '!help')
    t.hs.wait(t.room_id, 3)
    check(answered(t.hs, t.room_id) == [c1, c2, c3], 'commands lost: %r' % answered(t.hs, t.room_id))
    logins = [json.loads(line) for line in open(t.hs.log) if '"/_matrix/client/v3/login"' in line]
    bodies = [json.loads(x['body']) for x in logins if x['method'] == 'POST']
    check(len(bodies) == 2 and all(x.get('refresh_token') is True for x in bodies),
          'logins: %r' % [{k: v for k, v in x.items() if k != 'password'} for x in bodies])
    device = re.search(r'\(device (\w+)\)', b.log_text()).group(1)
    check(bodies[1].get('device_id') == device, 'the second login made a new device: %r'
          % bodies[1].get('device_id'))
    check(b.proc.poll() is None, 'the daemon exited')


@test
def sso_only_homeserver_gets_a_message_pointing_at_access_token_file(t):
    t.hs.config(login='sso')
    b = t.bot(auth='password')
    b.start(wait_ready=False)
    rc = b.proc.wait(30)
    check(rc != 0, 'started without a login')
    check('no password login' in b.log_text() and 'access_token_file' in b.log_text(),
          b.log_text()[-1500:])


@test
def command_with_a_relation_of_its_own_is_answered_as_a_plain_reply(t):
    t.bot().start()
    note = t.hs.send(t.room_id, BOB, 'the disk is almost full')
    cmd = t.hs.send(t.room_id, ALICE, content={
        'msgtype': 'm.text', 'body': '!status',
        'm.relates_to': {'rel_type': 'm.reference', 'event_id': note}})
    msgs = replies(t.hs.wait(t.room_id, 1))
    r = rel(msgs[0])
    check(r.get('m.in_reply_to', {}).get('event_id') == cmd and 'rel_type' not in r,
          'not a plain reply to the command: %r' % r)


@test
def every_message_carries_m_mentions_and_pings_nobody_by_accident(t):
    t.bot().start()
    t.hs.send(t.room_id, EVE, '!status')        # refused: the reply names EVE
    t.hs.send(t.room_id, ALICE, '!help')
    msgs = replies(t.hs.wait(t.room_id, 2))
    named = [m for m in msgs if EVE in m['content']['body']]
    check(named, 'no reply names the stranger: %r' % [m['content']['body'][:60] for m in msgs])
    for m in msgs:
        check(m['content'].get('m.mentions') == {}, 'm.mentions missing or not empty: %r'
              % m['content'])


def gap_after_restart(t, empty_pages):
    """The bot misses 60 messages (its timeline limit is 50): the gap is
    filled from /messages, whose first pages are empty but have an end."""
    b = t.bot().start()
    b.stop()
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    for i in range(60):
        t.hs.send(t.room_id, BOB, 'chatter %d' % i)
    t.hs.fault('empty_pages', count=empty_pages)
    b.start()
    return b, cmd


@test
def empty_messages_page_with_an_end_is_not_the_end_of_the_gap(t):
    b, cmd = gap_after_restart(t, 2)
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'the command behind empty pages was lost')
    check('gap in' in b.log_text(), 'no gap: the test proves nothing')


@test
def gap_page_limit_tells_the_room_with_a_time_range(t):
    t.hs.config(rate_limit=False)
    b, cmd = gap_after_restart(t, 80)
    t.hs.wait(t.room_id, 1)
    b.wait_log('may have been missed')
    said = [m['content']['body'] for m in replies(t.hs.events(t.room_id, sender=BOT))]
    check(any('may have been missed' in s and 'UTC' in s and ' and ' in s for s in said),
          'no notice with a time range: %r' % said)


@test
def retry_after_as_an_http_date_is_honoured(t):
    t.bot().start()
    t.hs.fault('429', mode='date', retry_after_ms=3000, path_regex='/send/m.room.message/')
    t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1, timeout=30)
    sends = [json.loads(line) for line in open(t.hs.log)
             if '/send/m.room.message/' in line]
    check(len(sends) >= 2, 'no retry: %d sends' % len(sends))
    waited = sends[1]['time'] - sends[0]['time']
    check(waited >= 1500, 'retried %d ms after a Retry-After of ~3 s (HTTP date)' % waited)


@test
def start_up_calls_honour_429(t):
    t.hs.fault('429', count=1, mode='body', retry_after_ms=2500, path_regex='/joined_rooms')
    b = t.bot().start()
    check('retrying in 2500 ms' in b.log_text(), 'the 429 wait was not used: %s'
          % b.log_text()[-800:])


def creator_passes_member_does_not(t, room):
    """With min_power_level = 100, ALICE (the creator) is served and BOB
    (below 100) refused."""
    b = t.bot(rooms=[room], extra='min_power_level = 100').start()
    cmd = t.hs.send(room, ALICE, '!status')
    t.hs.send(room, BOB, '!status')
    t.hs.wait(room, 2)
    check(answered(t.hs, room)[0] == cmd, 'the creator was refused')
    check('refused a command from %s' % BOB in b.log_text(), 'a member below 100 passed')
    check('refused a command from %s' % ALICE not in b.log_text(), 'the creator was refused')
    return b


@test
def room_version_12_creators_have_infinite_power(t):
    room = t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], room_version='12',
                     power_levels={'users': {BOB: 50}})
    check(':' not in room, 'a v12 room id has no server part: %s' % room)
    b = creator_passes_member_does_not(t, room)
    r = subprocess.run([BACKUPBOT, '-c', b.conf, 'check'], capture_output=True, text=True, timeout=60)
    check('%s has power level' % ALICE not in r.stdout, 'check disagrees: %s' % r.stdout)
    check('%s has power level' % BOB in r.stdout, 'check missed the low admin: %s' % r.stdout)


@test
def without_power_levels_the_creator_has_100(t):
    room = t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], no_power_levels=True)
    creator_passes_member_does_not(t, room)


@test
def upgraded_room_is_followed_on_an_admins_invite(t):
    b = t.bot().start()
    new = t.hs.call('POST', '/_test/rooms/%s/upgrade' % t.room_id,
                    {'sender': ALICE})['replacement_room']
    b.wait_log('was upgraded to %s' % new)
    b.wait_log('cannot join the upgraded room')
    t.hs.call('POST', '/_test/rooms/%s/invite' % new, {'sender': ALICE, 'user_id': BOT})
    note = replies(t.hs.wait(new, 1))[0]['content']['body']
    check('replaces %s' % t.room_id in note, 'the move is not said: %r' % note)
    cmd = t.hs.send(new, ALICE, '!status')
    t.hs.wait(new, 2)
    check(answered(t.hs, new) == [cmd], 'no answer in the upgraded room')


@test
def upgraded_public_room_is_joined_by_itself(t):
    b = t.bot().start()
    new = t.hs.call('POST', '/_test/rooms/%s/upgrade' % t.room_id,
                    {'sender': ALICE, 'public': True})['replacement_room']
    b.wait_log('moved from %s' % t.room_id)
    cmd = t.hs.send(new, BOB, '!help')
    t.hs.wait(new, 2)
    check(answered(t.hs, new) == [cmd], 'no answer in the upgraded room')
