/** sessionStorage key of the admin token (the page's script and the tests both read it). */
export const TOKEN_KEY = 'fishchat.monitor.token';
