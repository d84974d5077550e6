// Kith's GraphiQL page (served at GET /graphql): mounts the vendored GraphiQL on this server's
// own endpoints. No inline script: the page's Content-Security-Policy allows only files.
//
// - Queries and mutations: POST /graphql on this origin.
// - Subscriptions: graphql-transport-ws on /graphql/ws of this host (ws: or wss: as the page);
//   GraphiQL sends the header editor's headers in `connection_init`, where Kith reads the token.
// - The token: pasted once in the bar above GraphiQL and kept in this browser's localStorage
//   (key `kith.graphiql.token`) until "Forget"; the header editor starts as
//   {"Authorization": "Bearer <token>"}. Without one, only introspection and `login` run.
(function () {
  'use strict';

  var KEY = 'kith.graphiql.token';
  var form = document.getElementById('kith-token');
  var input = document.getElementById('kith-token-input');
  var forget = document.getElementById('kith-token-forget');
  var state = document.getElementById('kith-token-state');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));

  var fetcher = GraphiQL.createFetcher({
    url: location.origin + '/graphql',
    subscriptionUrl: (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/graphql/ws',
  });

  function storedToken() {
    try {
      return localStorage.getItem(KEY) || '';
    } catch (e) {
      return '';
    }
  }

  function keepToken(token) {
    try {
      if (token) {
        localStorage.setItem(KEY, token);
      } else {
        localStorage.removeItem(KEY);
      }
    } catch (e) {
      state.textContent = 'This browser keeps nothing for this page: paste the token into the headers below.';
    }
  }

  var DEFAULT_QUERY =
    '# Kith\'s GraphQL API. Paste an API token in the bar above:\n' +
    '# it goes in the Authorization header below.\n' +
    '# The docs explorer is the book icon on the left.\n' +
    '{\n  contacts(first: 5) {\n    edges {\n      node {\n        id\n        firstName\n        lastName\n      }\n    }\n  }\n}\n';

  var generation = 0;

  function mount() {
    generation += 1;
    var token = storedToken();
    var headers = token ? { Authorization: 'Bearer ' + token } : {};
    state.textContent = token
      ? 'A token is kept in this browser (Forget removes it).'
      : 'No token yet: only introspection and login run.';
    root.render(
      React.createElement(GraphiQL, {
        // A new token starts GraphiQL afresh, so the header editor shows it.
        key: generation,
        fetcher: fetcher,
        headers: JSON.stringify(headers, null, 2),
        shouldPersistHeaders: false,
        isHeadersEditorEnabled: true,
        defaultEditorToolsVisibility: 'headers',
        defaultQuery: DEFAULT_QUERY,
      })
    );
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var token = input.value.trim();
    if (!token) {
      state.textContent = 'Paste a token first.';
      return;
    }
    input.value = '';
    keepToken(token);
    mount();
  });

  forget.addEventListener('click', function () {
    input.value = '';
    keepToken('');
    mount();
  });

  mount();
})();
