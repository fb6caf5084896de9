"""What real homeservers do (Synapse as the model): a cached /sync, clock
skew between hosts, kicks, redactions, expiring tokens, rate limits."""
import os
import time

from harness import ALICE, BOB, BOT, EVE, check, rel, replies, test

FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'


def answered(hs, room):
    """Command event ids the bot answered, in the order of its replies."""
    return [rel(e)['m.in_reply_to']['event_id'] for e in
            replies(hs.events(room, sender=BOT)) if 'm.in_reply_to' in rel(e)]


def skewed(bot, offset):
    """Run `bot` with its clock `offset` off (libfaketime, e.g. '-5m')."""
    bot.env = dict(os.environ, LD_PRELOAD=FAKETIME_LIB, FAKETIME=offset,
                   FAKETIME_DONT_RESET='1')
    return bot


def run_then_stop(t):
    """A first bot answers one command and stops: its /sync answers are now
    in the homeserver's 2-minute response cache."""
    a = t.bot(name='first').start()
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 2)
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
    t.hs.wait(t.room_id, 4)
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
    t.hs.wait(t.room_id, 4)
    got = answered(t.hs, t.room_id)
    check(got == [old, new], 'clock %s: history ran or the new command was dropped: %r'
          % (offset, got))
    check('backlog_max_age' not in b.log_text(), 'clock %s: a new command counted as old' % offset)


@test
def bot_clock_five_minutes_slow_runs_no_history(t):
    skew_case(t, '-5m')


@test
def bot_clock_five_minutes_fast_drops_no_new_command(t):
    skew_case(t, '+5m')


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
    t.hs.wait(t.room_id, 2)
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
    t.hs.wait(t.room_id, 2)
    check(answered(t.hs, t.room_id) == [cmd], 'the admin was refused')
    check('refused' not in b.log_text(), 'the admin was refused: %s' % b.log_text()[-500:])
