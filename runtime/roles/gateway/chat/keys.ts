/** sessionStorage keys of the chat page (the page's script and the tests both read them). */
/** `{user, token, device}` of the signed-in user: this tab only, gone when it closes. */
export const SESSION_KEY = 'fishchat.chat.session';
/** Prefix of the per user+device state: the conversations and this tab's own messages (pending ones are sent again after a reload). */
export const STATE_KEY_PREFIX = 'fishchat.chat.state.';
