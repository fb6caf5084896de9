/*
 * olm_dl.h - libolm, loaded when E2EE is first used (olm_dl.c).
 *
 * libolm is C++ and brings the C++ runtime with it: linked at start-up,
 * every backupbot process (each backup, each CLI run) would map and
 * initialise libstdc++, 1.4 MB of resident pages, to never use it.  So it
 * is opened with dlopen by the E2EE code only, and the olm_* names used
 * there call through this table.  Include this instead of <olm/olm.h>;
 * nothing may call an olm_* function before olm_dl_load() returned 0.
 */
#ifndef BB_OLM_DL_H
#define BB_OLM_DL_H

#include <olm/olm.h>

/* Every libolm function backupbot calls. */
#define OLM_DL_FUNCS(X) \
	X(olm_account) \
	X(olm_account_generate_fallback_key) \
	X(olm_account_generate_fallback_key_random_length) \
	X(olm_account_generate_one_time_keys) \
	X(olm_account_generate_one_time_keys_random_length) \
	X(olm_account_identity_keys) \
	X(olm_account_identity_keys_length) \
	X(olm_account_last_error) \
	X(olm_account_mark_keys_as_published) \
	X(olm_account_max_number_of_one_time_keys) \
	X(olm_account_one_time_keys) \
	X(olm_account_one_time_keys_length) \
	X(olm_account_sign) \
	X(olm_account_signature_length) \
	X(olm_account_size) \
	X(olm_account_unpublished_fallback_key) \
	X(olm_account_unpublished_fallback_key_length) \
	X(olm_clear_account) \
	X(olm_clear_inbound_group_session) \
	X(olm_clear_outbound_group_session) \
	X(olm_clear_session) \
	X(olm_clear_utility) \
	X(olm_create_account) \
	X(olm_create_account_random_length) \
	X(olm_create_inbound_session_from) \
	X(olm_create_outbound_session) \
	X(olm_create_outbound_session_random_length) \
	X(olm_decrypt) \
	X(olm_decrypt_max_plaintext_length) \
	X(olm_ed25519_verify) \
	X(olm_encrypt) \
	X(olm_encrypt_message_length) \
	X(olm_encrypt_message_type) \
	X(olm_encrypt_random_length) \
	X(olm_error) \
	X(olm_group_decrypt) \
	X(olm_group_decrypt_max_plaintext_length) \
	X(olm_group_encrypt) \
	X(olm_group_encrypt_message_length) \
	X(olm_inbound_group_session) \
	X(olm_inbound_group_session_id) \
	X(olm_inbound_group_session_id_length) \
	X(olm_inbound_group_session_last_error) \
	X(olm_inbound_group_session_size) \
	X(olm_init_inbound_group_session) \
	X(olm_init_outbound_group_session) \
	X(olm_init_outbound_group_session_random_length) \
	X(olm_matches_inbound_session_from) \
	X(olm_outbound_group_session) \
	X(olm_outbound_group_session_id) \
	X(olm_outbound_group_session_id_length) \
	X(olm_outbound_group_session_key) \
	X(olm_outbound_group_session_key_length) \
	X(olm_outbound_group_session_last_error) \
	X(olm_outbound_group_session_message_index) \
	X(olm_outbound_group_session_size) \
	X(olm_pickle_account) \
	X(olm_pickle_account_length) \
	X(olm_pickle_inbound_group_session) \
	X(olm_pickle_inbound_group_session_length) \
	X(olm_pickle_outbound_group_session) \
	X(olm_pickle_outbound_group_session_length) \
	X(olm_pickle_session) \
	X(olm_pickle_session_length) \
	X(olm_remove_one_time_keys) \
	X(olm_session) \
	X(olm_session_last_error) \
	X(olm_session_size) \
	X(olm_unpickle_account) \
	X(olm_unpickle_inbound_group_session) \
	X(olm_unpickle_outbound_group_session) \
	X(olm_unpickle_session) \
	X(olm_utility) \
	X(olm_utility_size)

struct olm_dl {
#define OLM_DL_MEMBER(f)	__typeof__(f) *p_##f;
	OLM_DL_FUNCS(OLM_DL_MEMBER)
#undef OLM_DL_MEMBER
};

extern struct olm_dl olm_dl;

/*
 * Open libolm and fill olm_dl, once: 0, or -1 with *cause (libolm is
 * not installed, or lacks a function).  Later calls return the first
 * result.
 */
int olm_dl_load(char **cause);

#ifndef OLM_DL_NO_NAMES
#define olm_account	(*olm_dl.p_olm_account)
#define olm_account_generate_fallback_key	(*olm_dl.p_olm_account_generate_fallback_key)
#define olm_account_generate_fallback_key_random_length	(*olm_dl.p_olm_account_generate_fallback_key_random_length)
#define olm_account_generate_one_time_keys	(*olm_dl.p_olm_account_generate_one_time_keys)
#define olm_account_generate_one_time_keys_random_length	(*olm_dl.p_olm_account_generate_one_time_keys_random_length)
#define olm_account_identity_keys	(*olm_dl.p_olm_account_identity_keys)
#define olm_account_identity_keys_length	(*olm_dl.p_olm_account_identity_keys_length)
#define olm_account_last_error	(*olm_dl.p_olm_account_last_error)
#define olm_account_mark_keys_as_published	(*olm_dl.p_olm_account_mark_keys_as_published)
#define olm_account_max_number_of_one_time_keys	(*olm_dl.p_olm_account_max_number_of_one_time_keys)
#define olm_account_one_time_keys	(*olm_dl.p_olm_account_one_time_keys)
#define olm_account_one_time_keys_length	(*olm_dl.p_olm_account_one_time_keys_length)
#define olm_account_sign	(*olm_dl.p_olm_account_sign)
#define olm_account_signature_length	(*olm_dl.p_olm_account_signature_length)
#define olm_account_size	(*olm_dl.p_olm_account_size)
#define olm_account_unpublished_fallback_key	(*olm_dl.p_olm_account_unpublished_fallback_key)
#define olm_account_unpublished_fallback_key_length	(*olm_dl.p_olm_account_unpublished_fallback_key_length)
#define olm_clear_account	(*olm_dl.p_olm_clear_account)
#define olm_clear_inbound_group_session	(*olm_dl.p_olm_clear_inbound_group_session)
#define olm_clear_outbound_group_session	(*olm_dl.p_olm_clear_outbound_group_session)
#define olm_clear_session	(*olm_dl.p_olm_clear_session)
#define olm_clear_utility	(*olm_dl.p_olm_clear_utility)
#define olm_create_account	(*olm_dl.p_olm_create_account)
#define olm_create_account_random_length	(*olm_dl.p_olm_create_account_random_length)
#define olm_create_inbound_session_from	(*olm_dl.p_olm_create_inbound_session_from)
#define olm_create_outbound_session	(*olm_dl.p_olm_create_outbound_session)
#define olm_create_outbound_session_random_length	(*olm_dl.p_olm_create_outbound_session_random_length)
#define olm_decrypt	(*olm_dl.p_olm_decrypt)
#define olm_decrypt_max_plaintext_length	(*olm_dl.p_olm_decrypt_max_plaintext_length)
#define olm_ed25519_verify	(*olm_dl.p_olm_ed25519_verify)
#define olm_encrypt	(*olm_dl.p_olm_encrypt)
#define olm_encrypt_message_length	(*olm_dl.p_olm_encrypt_message_length)
#define olm_encrypt_message_type	(*olm_dl.p_olm_encrypt_message_type)
#define olm_encrypt_random_length	(*olm_dl.p_olm_encrypt_random_length)
#define olm_error	(*olm_dl.p_olm_error)
#define olm_group_decrypt	(*olm_dl.p_olm_group_decrypt)
#define olm_group_decrypt_max_plaintext_length	(*olm_dl.p_olm_group_decrypt_max_plaintext_length)
#define olm_group_encrypt	(*olm_dl.p_olm_group_encrypt)
#define olm_group_encrypt_message_length	(*olm_dl.p_olm_group_encrypt_message_length)
#define olm_inbound_group_session	(*olm_dl.p_olm_inbound_group_session)
#define olm_inbound_group_session_id	(*olm_dl.p_olm_inbound_group_session_id)
#define olm_inbound_group_session_id_length	(*olm_dl.p_olm_inbound_group_session_id_length)
#define olm_inbound_group_session_last_error	(*olm_dl.p_olm_inbound_group_session_last_error)
#define olm_inbound_group_session_size	(*olm_dl.p_olm_inbound_group_session_size)
#define olm_init_inbound_group_session	(*olm_dl.p_olm_init_inbound_group_session)
#define olm_init_outbound_group_session	(*olm_dl.p_olm_init_outbound_group_session)
#define olm_init_outbound_group_session_random_length	(*olm_dl.p_olm_init_outbound_group_session_random_length)
#define olm_matches_inbound_session_from	(*olm_dl.p_olm_matches_inbound_session_from)
#define olm_outbound_group_session	(*olm_dl.p_olm_outbound_group_session)
#define olm_outbound_group_session_id	(*olm_dl.p_olm_outbound_group_session_id)
#define olm_outbound_group_session_id_length	(*olm_dl.p_olm_outbound_group_session_id_length)
#define olm_outbound_group_session_key	(*olm_dl.p_olm_outbound_group_session_key)
#define olm_outbound_group_session_key_length	(*olm_dl.p_olm_outbound_group_session_key_length)
#define olm_outbound_group_session_last_error	(*olm_dl.p_olm_outbound_group_session_last_error)
#define olm_outbound_group_session_message_index	(*olm_dl.p_olm_outbound_group_session_message_index)
#define olm_outbound_group_session_size	(*olm_dl.p_olm_outbound_group_session_size)
#define olm_pickle_account	(*olm_dl.p_olm_pickle_account)
#define olm_pickle_account_length	(*olm_dl.p_olm_pickle_account_length)
#define olm_pickle_inbound_group_session	(*olm_dl.p_olm_pickle_inbound_group_session)
#define olm_pickle_inbound_group_session_length	(*olm_dl.p_olm_pickle_inbound_group_session_length)
#define olm_pickle_outbound_group_session	(*olm_dl.p_olm_pickle_outbound_group_session)
#define olm_pickle_outbound_group_session_length	(*olm_dl.p_olm_pickle_outbound_group_session_length)
#define olm_pickle_session	(*olm_dl.p_olm_pickle_session)
#define olm_pickle_session_length	(*olm_dl.p_olm_pickle_session_length)
#define olm_remove_one_time_keys	(*olm_dl.p_olm_remove_one_time_keys)
#define olm_session	(*olm_dl.p_olm_session)
#define olm_session_last_error	(*olm_dl.p_olm_session_last_error)
#define olm_session_size	(*olm_dl.p_olm_session_size)
#define olm_unpickle_account	(*olm_dl.p_olm_unpickle_account)
#define olm_unpickle_inbound_group_session	(*olm_dl.p_olm_unpickle_inbound_group_session)
#define olm_unpickle_outbound_group_session	(*olm_dl.p_olm_unpickle_outbound_group_session)
#define olm_unpickle_session	(*olm_dl.p_olm_unpickle_session)
#define olm_utility	(*olm_dl.p_olm_utility)
#define olm_utility_size	(*olm_dl.p_olm_utility_size)
#endif

#endif
