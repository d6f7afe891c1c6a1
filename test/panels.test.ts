import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configSchema, type Config } from '../server/config-schema.js';
import { createPanelAdapter, detectPanel } from '../server/panels/index.js';
import { isUnderAny, parseKeyValue, parseOptionFile, parsePasswd } from '../server/panels/files.js';
import type { PanelDeps } from '../server/panels/files.js';
import { firstMailAddress } from '../server/util/mail-address.js';

// ---------------------------------------------------------------------------------------------
// Helpers: simulated panel trees under a temporary rootPrefix, and a recording database lookup.

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary root with the given files (paths are absolute inside the root; '/' suffix = directory). */
function makeTree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-panels-'));
  tempDirs.push(root);
  for (const [p, content] of Object.entries(files)) {
    const full = path.join(root, p);
    if (p.endsWith('/')) {
      fs.mkdirSync(full, { recursive: true });
    } else {
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, content);
    }
  }
  return root;
}

function config(rootPrefix: string, extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({ rootPrefix, ...extra });
}

type DbAnswer = { databases: string[]; users: string[] };

/** deps whose listDatabasesByPrefix records its calls and answers from `answers` (else nothing). */
function fakeDeps(answers: Record<string, DbAnswer> = {}, socketCandidates: string[] = []): PanelDeps & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    socketCandidates,
    listDatabasesByPrefix: async (prefix: string) => {
      calls.push(prefix);
      return answers[prefix] ?? { databases: [], users: [] };
    },
  };
}

/** A real file standing in for the MySQL server socket, and a path that does not exist. */
function socketPaths(): { present: string; absent: string } {
  const dir = makeTree({ '/mysqld.sock': '' });
  return { present: path.join(dir, 'mysqld.sock'), absent: path.join(dir, 'nope', 'mysqld.sock') };
}

const passwd = (...lines: string[]): string => `${lines.join('\n')}\n`;

// ---------------------------------------------------------------------------------------------

describe('detectPanel / createPanelAdapter', () => {
  test('standalone when no panel files exist', () => {
    assert.equal(detectPanel(config(makeTree({ '/etc/passwd': '' }))), 'standalone');
  });

  test('cPanel by /var/cpanel/users or by the cpanel binary', () => {
    assert.equal(detectPanel(config(makeTree({ '/var/cpanel/users/': '' }))), 'cpanel');
    assert.equal(detectPanel(config(makeTree({ '/usr/local/cpanel/cpanel': '' }))), 'cpanel');
  });

  test('DirectAdmin by data/users or by the directadmin binary', () => {
    assert.equal(detectPanel(config(makeTree({ '/usr/local/directadmin/data/users/': '' }))), 'directadmin');
    assert.equal(detectPanel(config(makeTree({ '/usr/local/directadmin/directadmin': '' }))), 'directadmin');
  });

  test('cPanel is checked before DirectAdmin', () => {
    const root = makeTree({ '/var/cpanel/users/': '', '/usr/local/directadmin/directadmin': '' });
    assert.equal(detectPanel(config(root)), 'cpanel');
  });

  test('config.panel other than auto wins over the files', () => {
    const root = makeTree({ '/var/cpanel/users/': '' });
    assert.equal(detectPanel(config(root, { panel: 'directadmin' })), 'directadmin');
    assert.equal(detectPanel(config(root, { panel: 'standalone' })), 'standalone');
  });

  test('createPanelAdapter returns the detected adapter and queries nothing up front', () => {
    const deps = fakeDeps();
    assert.equal(createPanelAdapter(config(makeTree({ '/var/cpanel/users/': '' })), deps).name, 'cpanel');
    assert.equal(createPanelAdapter(config(makeTree({ '/usr/local/directadmin/data/users/': '' })), deps).name, 'directadmin');
    assert.equal(createPanelAdapter(config(makeTree({})), deps).name, 'standalone');
    assert.deepEqual(deps.calls, []);
  });
});

// ---------------------------------------------------------------------------------------------

describe('standalone', () => {
  const standalonePasswd = passwd(
    'root:x:0:0:root:/root:/bin/bash',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    '# a comment line',
    'nobody:x:65534:65534:nobody:/home/nobody:/usr/sbin/nologin',
    'alice:x:1000:1000:Alice:/home/alice:/bin/bash',
    'bob:x:1001:1001::/home2/bob:/bin/bash',
    'carol:x:1002:1002::/home2x/carol:/bin/bash',
    'dave:x:999:999::/home/dave:/bin/sh',
    'erin:x:1003:1003::/srv/erin:/bin/sh',
    'frank:x:1004:1004::/home/../etc/frank:/bin/sh',
    'alice_x:x:1005:1005::/home/alice_x:/bin/bash',
    'homeless:x:1006:1006::/home:/bin/sh',
    '+@netgroup::::::',
  );
  const answers: Record<string, DbAnswer> = {
    alice_: { databases: ['alice_wp', 'alice_blog', 'alice_x_shop'], users: ['alice_wp', 'alice_x_u'] },
    alice_x_: { databases: ['alice_x_shop'], users: ['alice_x_u'] },
  };

  test('lists system users by uid and home root, with their databases', async () => {
    const root = makeTree({ '/etc/passwd': standalonePasswd });
    const deps = fakeDeps(answers);
    const adapter = createPanelAdapter(config(root, { homeRoots: ['/home', '/home2'] }), deps);
    assert.equal(adapter.name, 'standalone');
    assert.deepEqual(deps.calls, [], 'nothing is queried before listAccounts');
    const accounts = await adapter.listAccounts();
    // carol (/home2x is not under /home2), dave (uid 999), erin (/srv), frank (/etc/frank once
    // resolved), nobody (65534), homeless (home is the root itself) and system users are out.
    assert.deepEqual(accounts.map((a) => a.username), ['alice', 'alice_x', 'bob']);
    const alice = accounts[0]!;
    assert.deepEqual(alice, {
      username: 'alice', owner: 'root', home: '/home/alice', uid: 1000, gid: 1000, domains: [],
      // alice_x_shop / alice_x_u start with 'alice_' but belong to the account alice_x.
      databases: ['alice_blog', 'alice_wp'], databaseUsers: ['alice_wp'],
      suspended: false, package: null, contactEmail: null,
    });
    assert.deepEqual(accounts[1]!.databases, ['alice_x_shop']);
    assert.deepEqual(accounts[1]!.databaseUsers, ['alice_x_u']);
    assert.deepEqual(accounts[2]!, {
      username: 'bob', owner: 'root', home: '/home2/bob', uid: 1001, gid: 1001, domains: [],
      databases: [], databaseUsers: [], suspended: false, package: null, contactEmail: null,
    });
    assert.deepEqual(deps.calls, ['alice_', 'alice_x_', 'bob_']);
  });

  test('minUid moves the cutoff', async () => {
    const root = makeTree({ '/etc/passwd': standalonePasswd });
    const high = await createPanelAdapter(config(root, { minUid: 1002 }), fakeDeps()).listAccounts();
    assert.deepEqual(high.map((a) => a.username), ['alice_x']);
    const low = await createPanelAdapter(config(root, { minUid: 500 }), fakeDeps()).listAccounts();
    assert.deepEqual(low.map((a) => a.username), ['alice', 'alice_x', 'dave']);
  });

  test('the default home root is /home only', async () => {
    const root = makeTree({ '/etc/passwd': standalonePasswd });
    const accounts = await createPanelAdapter(config(root), fakeDeps()).listAccounts();
    assert.deepEqual(accounts.map((a) => a.username), ['alice', 'alice_x']);
  });

  test('getAccount applies the same filters; unknown or unsafe names are null', async () => {
    const root = makeTree({ '/etc/passwd': standalonePasswd });
    const deps = fakeDeps(answers);
    const adapter = createPanelAdapter(config(root, { homeRoots: ['/home', '/home2'] }), deps);
    const alice = await adapter.getAccount('alice');
    assert.equal(alice?.home, '/home/alice');
    assert.deepEqual(alice?.databases, ['alice_blog', 'alice_wp']);
    assert.deepEqual(deps.calls, ['alice_'], 'only the asked account is looked up');
    assert.equal(await adapter.getAccount('carol'), null);
    assert.equal(await adapter.getAccount('dave'), null);
    assert.equal(await adapter.getAccount('nobody'), null);
    assert.equal(await adapter.getAccount('root'), null);
    assert.equal(await adapter.getAccount('ghost'), null);
    assert.equal(await adapter.getAccount('../etc'), null);
    assert.equal(await adapter.getAccount(''), null);
  });

  test('a failing database lookup names the account, and the account is still listed (its files can be backed up)', async () => {
    const root = makeTree({ '/etc/passwd': standalonePasswd });
    const deps: PanelDeps = { listDatabasesByPrefix: async () => { throw new Error('connect ECONNREFUSED'); } };
    const adapter = createPanelAdapter(config(root), deps);
    const alice = await adapter.getAccount('alice');
    assert.ok(alice, 'the account is still there');
    assert.deepEqual(alice.databases, []);
    assert.match(alice.databaseProblem ?? '', /account 'alice'.*ECONNREFUSED/);
    const listed = (await adapter.listAccounts()).find((a) => a.username === 'alice');
    assert.match(listed?.databaseProblem ?? '', /account 'alice'.*ECONNREFUSED/);
  });

  test('a malformed /etc/passwd is an error naming the file and line', async () => {
    const root = makeTree({ '/etc/passwd': passwd('alice:x:1000:1000::/home/alice:/bin/bash', 'mallory:x:abc:1000::/home/mallory:/bin/sh') });
    const file = path.join(root, 'etc/passwd');
    await assert.rejects(createPanelAdapter(config(root), fakeDeps()).listAccounts(), (err: Error) => {
      assert.ok(err.message.includes(`${file}:2`), err.message);
      assert.match(err.message, /mallory/);
      return true;
    });
    const short = makeTree({ '/etc/passwd': passwd('alice:x:1000:1000:/home/alice') });
    await assert.rejects(createPanelAdapter(config(short), fakeDeps()).getAccount('alice'), /etc\/passwd:1: malformed passwd entry \(expected 7/);
  });

  test('a missing /etc/passwd is an error naming the file', async () => {
    const root = makeTree({});
    await assert.rejects(createPanelAdapter(config(root), fakeDeps()).listAccounts(), (err: Error) => err.message.includes(path.join(root, 'etc/passwd')));
  });

  describe('MySQL credentials', () => {
    test('without /root/.my.cnf: root over the first socket that exists', async () => {
      const { present, absent } = socketPaths();
      const root = makeTree({ '/etc/passwd': '' });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps({}, [absent, present])).mysqlCredentials(), { user: 'root', socket: present });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps({}, [absent])).mysqlCredentials(), { user: 'root' });
    });

    test('from the [client] group of /root/.my.cnf, quoted password with #', async () => {
      const { present } = socketPaths();
      const root = makeTree({
        '/root/.my.cnf': [
          '# written by hand',
          '[mysql]',
          'user=not-this-one',
          '[client]',
          'user = admin',
          'password="p#ss"   # trailing comment',
          'socket=/var/lib/mysql/mysql.sock',
          'port=3307',
          '',
        ].join('\n'),
      });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps({}, [present])).mysqlCredentials(), {
        user: 'admin', password: 'p#ss', socket: '/var/lib/mysql/mysql.sock', port: 3307,
      });
    });

    test('a .my.cnf with neither socket nor host gets the server socket; a remote host does not', async () => {
      const { present } = socketPaths();
      const local = makeTree({ '/root/.my.cnf': "[client]\npassword='s3cret'\n" });
      assert.deepEqual(await createPanelAdapter(config(local), fakeDeps({}, [present])).mysqlCredentials(), { user: 'root', password: 's3cret', socket: present });
      const remote = makeTree({ '/root/.my.cnf': '[client]\nuser=backup\npassword=x\nhost=db.internal\n' });
      assert.deepEqual(await createPanelAdapter(config(remote), fakeDeps({}, [present])).mysqlCredentials(), { user: 'backup', password: 'x', host: 'db.internal' });
    });

    test('config.mysql overrides the files', async () => {
      const root = makeTree({ '/root/.my.cnf': '[client]\nuser=root\npassword=fromfile\n' });
      const cfg = config(root, { mysql: { host: '10.0.0.5', port: 3306, user: 'tidemark', password: 'fromconfig' } });
      assert.deepEqual(await createPanelAdapter(cfg, fakeDeps()).mysqlCredentials(), { host: '10.0.0.5', port: 3306, user: 'tidemark', password: 'fromconfig' });
    });

    test('a bad port or an option outside any group is an error naming the file', async () => {
      const badPort = makeTree({ '/root/.my.cnf': '[client]\nport=33o6\n' });
      await assert.rejects(createPanelAdapter(config(badPort), fakeDeps()).mysqlCredentials(), (err: Error) => {
        assert.ok(err.message.includes(path.join(badPort, 'root/.my.cnf')), err.message);
        assert.match(err.message, /port '33o6'/);
        return true;
      });
      const noGroup = makeTree({ '/root/.my.cnf': 'password=x\n[client]\n' });
      await assert.rejects(createPanelAdapter(config(noGroup), fakeDeps()).mysqlCredentials(), (err: Error) => err.message.includes(`${path.join(noGroup, 'root/.my.cnf')}:1`));
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('cPanel', () => {
  const aliceDbMap = {
    MYSQL: {
      owner: 'alice',
      server: 'localhost',
      dbs: { alice_wp: 'localhost', alice_shop: 'localhost', '': 'junk' },
      dbusers: {
        alice_wpuser: { server: 'localhost', dbs: { alice_wp: 'localhost' } },
        cpses_al1b2c3d4: { server: 'localhost', dbs: {} },
      },
      noprefix: {},
    },
    PGSQL: { owner: 'alice', dbs: { alice_pg: 'localhost' }, dbusers: { alice_pguser: { dbs: {} } } },
    version: 1,
  };

  function cpanelTree(extra: Record<string, string> = {}): string {
    return makeTree({
      '/usr/local/cpanel/cpanel': '',
      '/etc/passwd': passwd(
        'root:x:0:0:root:/root:/bin/bash',
        'alice:x:1000:1000::/home/alice:/bin/bash',
        'bob:x:1001:1001::/home2/bob:/usr/local/cpanel/bin/noshell',
        'res1:x:1002:1002::/home/res1:/bin/bash',
      ),
      '/var/cpanel/users/alice': [
        '# cPanel -- If you edit this file directly you must run /usr/local/cpanel/scripts/updateuserdomains',
        'BWLIMIT=unlimited',
        'DNS=Alice.example',
        'DNS1=alice-shop.example',
        'DNS2=ALICE.example',
        'DNS3=alice-blog.example',
        'XDNS1=old-alice.example',
        'OWNER=res1',
        'PLAN=res1_gold',
        'CONTACTEMAIL=alice@mail.example, alice.other@mail.example',
        'CONTACTEMAIL2=second@mail.example',
        'SUSPENDED=0',
        'USER=alice',
        '',
      ].join('\n'),
      '/var/cpanel/users/bob': 'CONTACTEMAIL=\r\nDNS=bob.example\r\nOWNER=root\r\nPLAN=default\r\nSUSPENDED=1\r\nUSER=bob\r\n',
      '/var/cpanel/users/res1': 'CONTACTEMAIL=not an address\nDNS=res1.example\nOWNER=root\nPLAN=undefined\nUSER=res1\n',
      '/var/cpanel/users/system': 'USER=system\n',
      '/var/cpanel/users/.hidden': 'USER=hidden\n',
      '/var/cpanel/users/ghost': 'DNS=ghost.example\nOWNER=root\n',
      '/etc/trueuserowners': '#userowners v1\nbob: res1\nres1: res1\n',
      '/var/cpanel/databases/alice.json': JSON.stringify(aliceDbMap),
      '/var/cpanel/databases/res1.json': JSON.stringify({ MYSQL: { dbs: { legacy_noprefix: 'localhost' }, dbusers: {} }, version: 1 }),
      ...extra,
    });
  }

  test('lists the accounts of /var/cpanel/users with owner, home, domains, databases, suspension', async () => {
    const deps = fakeDeps({ alice_: { databases: ['alice_other'], users: [] } });
    const adapter = createPanelAdapter(config(cpanelTree()), deps);
    assert.equal(adapter.name, 'cpanel');
    const accounts = await adapter.listAccounts();
    // system and .hidden are not accounts; ghost has no passwd entry.
    assert.deepEqual(accounts.map((a) => a.username), ['alice', 'bob', 'res1']);
    assert.deepEqual(accounts[0], {
      username: 'alice',
      owner: 'res1', // from OWNER= (no trueuserowners line)
      home: '/home/alice', uid: 1000, gid: 1000,
      // main domain first, lower-cased; the duplicate and the removed (XDNS) domain are not listed
      domains: ['alice.example', 'alice-blog.example', 'alice-shop.example'],
      // from the DB map: MYSQL only, no cpses_ session user, no empty name
      databases: ['alice_shop', 'alice_wp'],
      databaseUsers: ['alice_wpuser'],
      suspended: false,
      package: 'res1_gold',
      // the first of the listed addresses
      contactEmail: 'alice@mail.example',
    });
    assert.deepEqual(accounts[1], {
      username: 'bob',
      owner: 'res1', // /etc/trueuserowners wins over OWNER=root
      home: '/home2/bob', uid: 1001, gid: 1001,
      domains: ['bob.example'],
      databases: [], databaseUsers: [], // no DB map file
      suspended: true,
      package: 'default',
      contactEmail: null, // CONTACTEMAIL= empty
    });
    assert.equal(accounts[2]!.owner, 'res1');
    assert.equal(accounts[2]!.contactEmail, null, 'an invalid address counts as none');
    assert.deepEqual(accounts[2]!.databases, ['legacy_noprefix'], 'names come from the map, not from a prefix');
    assert.deepEqual(deps.calls, [], 'cPanel reads its DB map and does not query MySQL for names');
  });

  test('getAccount: known, unknown, no passwd entry, system, unsafe names', async () => {
    const adapter = createPanelAdapter(config(cpanelTree()), fakeDeps());
    assert.equal((await adapter.getAccount('bob'))?.suspended, true);
    assert.equal(await adapter.getAccount('nosuchuser'), null);
    assert.equal(await adapter.getAccount('ghost'), null);
    assert.equal(await adapter.getAccount('system'), null);
    assert.equal(await adapter.getAccount('.hidden'), null);
    assert.equal(await adapter.getAccount('../../etc/passwd'), null);
  });

  test('an empty users directory is no account (and no passwd is needed)', async () => {
    const adapter = createPanelAdapter(config(makeTree({ '/var/cpanel/users/': '' })), fakeDeps());
    assert.deepEqual(await adapter.listAccounts(), []);
  });

  test('a DB map that is not valid JSON is an error naming the file', async () => {
    const root = cpanelTree({ '/var/cpanel/databases/alice.json': '{"MYSQL": {"dbs": ' });
    const file = path.join(root, 'var/cpanel/databases/alice.json');
    const adapter = createPanelAdapter(config(root), fakeDeps());
    await assert.rejects(adapter.getAccount('alice'), (err: Error) => {
      assert.ok(err.message.startsWith(`${file} is not valid JSON`), err.message);
      return true;
    });
    await assert.rejects(adapter.listAccounts(), (err: Error) => err.message.includes(file));
  });

  test('a DB map of the wrong shape is an error naming the file', async () => {
    const root = cpanelTree({ '/var/cpanel/databases/alice.json': JSON.stringify({ MYSQL: { dbs: ['alice_wp'] } }) });
    await assert.rejects(createPanelAdapter(config(root), fakeDeps()).getAccount('alice'), (err: Error) => {
      assert.ok(err.message.includes(path.join(root, 'var/cpanel/databases/alice.json')), err.message);
      assert.match(err.message, /MYSQL\.dbs/);
      return true;
    });
  });

  test('an empty users file is an error naming the file', async () => {
    const root = cpanelTree({ '/var/cpanel/users/alice': '' });
    await assert.rejects(createPanelAdapter(config(root), fakeDeps()).listAccounts(), (err: Error) => err.message.includes(path.join(root, 'var/cpanel/users/alice')));
  });

  test('MySQL credentials from /root/.my.cnf, config.mysql overriding', async () => {
    const { present } = socketPaths();
    const root = cpanelTree({ '/root/.my.cnf': '[client]\npassword="p#ss\\"word"\nuser=root\n' });
    assert.deepEqual(await createPanelAdapter(config(root), fakeDeps({}, [present])).mysqlCredentials(), { user: 'root', password: 'p#ss"word', socket: present });
    const override = config(root, { mysql: { socket: '/tmp/other.sock', user: 'root', password: 'cfg' } });
    assert.deepEqual(await createPanelAdapter(override, fakeDeps({}, [present])).mysqlCredentials(), { socket: '/tmp/other.sock', user: 'root', password: 'cfg' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('DirectAdmin', () => {
  const users = '/usr/local/directadmin/data/users';

  function daTree(extra: Record<string, string> = {}): string {
    return makeTree({
      '/usr/local/directadmin/directadmin': '',
      '/etc/passwd': passwd(
        'root:x:0:0:root:/root:/bin/bash',
        'admin:x:1000:1000::/home/admin:/bin/bash',
        'res:x:1001:1001::/home/res:/bin/bash',
        'fred:x:1002:1002::/home/fred:/bin/false',
      ),
      [`${users}/admin/user.conf`]: 'username=admin\nusertype=admin\ncreator=root\ndomain=admin.example\npackage=\nsuspended=no\n',
      [`${users}/res/user.conf`]: 'account=ON\ncreator=admin\ndomain=res.example\nemail=res@mail.example; other@mail.example\npackage=reseller_pkg\nsuspended=no\nusername=res\nusertype=reseller\n',
      [`${users}/fred/user.conf`]: 'username=fred\nusertype=user\ncreator=res\ndomain=Fred.example\nemail= fred@mail.example \npackage=basic\nsuspended=yes\nsuspended_reason=billing\nns1=ns1.res.example\n',
      [`${users}/fred/domains.list`]: 'fred.example\nfred-blog.example\n\nfred-shop.example\n',
      [`${users}/ghost/user.conf`]: 'username=ghost\ncreator=admin\n',
      [`${users}/incomplete/`]: '',
      [`${users}/stray.txt`]: 'not an account\n',
      ...extra,
    });
  }

  test('lists users, resellers and admins with owner, domains, package, suspension, databases', async () => {
    const deps = fakeDeps({ fred_: { databases: ['fred_wp', 'fred_shop'], users: ['fred_wp'] } });
    const adapter = createPanelAdapter(config(daTree()), deps);
    assert.equal(adapter.name, 'directadmin');
    assert.deepEqual(deps.calls, []);
    const accounts = await adapter.listAccounts();
    // ghost has no passwd entry, incomplete no user.conf, stray.txt is a file.
    assert.deepEqual(accounts.map((a) => a.username), ['admin', 'fred', 'res']);
    assert.deepEqual(accounts[0], {
      username: 'admin', owner: 'root', home: '/home/admin', uid: 1000, gid: 1000,
      domains: ['admin.example'], databases: [], databaseUsers: [], suspended: false, package: null, contactEmail: null,
    });
    assert.deepEqual(accounts[1], {
      username: 'fred', owner: 'res', home: '/home/fred', uid: 1002, gid: 1002,
      domains: ['fred.example', 'fred-blog.example', 'fred-shop.example'],
      databases: ['fred_shop', 'fred_wp'], databaseUsers: ['fred_wp'],
      suspended: true, package: 'basic', contactEmail: 'fred@mail.example',
    });
    assert.equal(accounts[2]!.owner, 'admin');
    assert.equal(accounts[2]!.package, 'reseller_pkg');
    assert.equal(accounts[2]!.contactEmail, null, 'not an address (a ";" list): none');
    assert.deepEqual(deps.calls, ['admin_', 'fred_', 'res_']);
  });

  test('getAccount looks up one account only; missing ones are null', async () => {
    const deps = fakeDeps({ fred_: { databases: ['fred_wp'], users: [] } });
    const adapter = createPanelAdapter(config(daTree()), deps);
    assert.deepEqual((await adapter.getAccount('fred'))?.databases, ['fred_wp']);
    assert.deepEqual(deps.calls, ['fred_']);
    assert.equal(await adapter.getAccount('ghost'), null);
    assert.equal(await adapter.getAccount('incomplete'), null);
    assert.equal(await adapter.getAccount('nobody'), null);
    assert.equal(await adapter.getAccount('../../../etc'), null);
  });

  test('a failing database lookup names the account, and the account is still listed', async () => {
    const deps: PanelDeps = { listDatabasesByPrefix: async (p) => { if (p === 'fred_') throw new Error('Access denied for user'); return { databases: [], users: [] }; } };
    const fred = (await createPanelAdapter(config(daTree()), deps).listAccounts()).find((a) => a.username === 'fred');
    assert.match(fred?.databaseProblem ?? '', /account 'fred'.*Access denied/);
  });

  test('a user.conf naming another user is an error naming the file', async () => {
    const root = daTree({ [`${users}/fred/user.conf`]: 'username=frank\ncreator=res\n' });
    await assert.rejects(createPanelAdapter(config(root), fakeDeps()).getAccount('fred'), (err: Error) => {
      assert.ok(err.message.includes(path.join(root, users, 'fred/user.conf')), err.message);
      assert.match(err.message, /username=frank/);
      return true;
    });
  });

  describe('MySQL credentials', () => {
    test('from conf/mysql.conf; a password may contain =; localhost gets the socket', async () => {
      const { present } = socketPaths();
      const root = daTree({ '/usr/local/directadmin/conf/mysql.conf': 'user=da_admin\npasswd=s3c=r#t\nhost=localhost\n' });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps({}, [present])).mysqlCredentials(), {
        user: 'da_admin', password: 's3c=r#t', host: 'localhost', socket: present,
      });
    });

    test('socket= and port= are read', async () => {
      const root = daTree({ '/usr/local/directadmin/conf/mysql.conf': 'user=da_admin\npasswd=x\nsocket=/var/lib/mysql/mysql.sock\nport=3307\n' });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps()).mysqlCredentials(), {
        user: 'da_admin', password: 'x', socket: '/var/lib/mysql/mysql.sock', port: 3307,
      });
    });

    test('conf/my.cnf when mysql.conf is missing; an error naming both when neither exists', async () => {
      const root = daTree({ '/usr/local/directadmin/conf/my.cnf': '[client]\nuser=da_admin\npassword="p#ss"\nsocket=/tmp/mysql.sock\n' });
      assert.deepEqual(await createPanelAdapter(config(root), fakeDeps()).mysqlCredentials(), { user: 'da_admin', password: 'p#ss', socket: '/tmp/mysql.sock' });
      const bare = daTree();
      await assert.rejects(createPanelAdapter(config(bare), fakeDeps()).mysqlCredentials(), (err: Error) => {
        assert.ok(err.message.includes(path.join(bare, 'usr/local/directadmin/conf/mysql.conf')), err.message);
        assert.ok(err.message.includes(path.join(bare, 'usr/local/directadmin/conf/my.cnf')), err.message);
        return true;
      });
    });

    test('a mysql.conf without user= is an error naming the file', async () => {
      const root = daTree({ '/usr/local/directadmin/conf/mysql.conf': 'passwd=x\n' });
      await assert.rejects(createPanelAdapter(config(root), fakeDeps()).mysqlCredentials(), (err: Error) => err.message.includes(path.join(root, 'usr/local/directadmin/conf/mysql.conf')));
    });

    test('config.mysql overrides mysql.conf', async () => {
      const root = daTree({ '/usr/local/directadmin/conf/mysql.conf': 'user=da_admin\npasswd=x\n' });
      const cfg = config(root, { mysql: { user: 'other', password: 'y', host: '127.0.0.1', port: 3310 } });
      assert.deepEqual(await createPanelAdapter(cfg, fakeDeps()).mysqlCredentials(), { user: 'other', password: 'y', host: '127.0.0.1', port: 3310 });
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('file helpers', () => {
  test('firstMailAddress: the first of a comma-separated list, null for empty or invalid values', () => {
    assert.equal(firstMailAddress('a@x.example'), 'a@x.example');
    assert.equal(firstMailAddress(' a@x.example , b@y.example'), 'a@x.example');
    for (const bad of [undefined, null, '', ' ', 'nobody', 'a@', '@x', 'a b@x.example', '<a@x.example>', 'a@x.example; b@y.example', 'a@x.example\nBcc: c@z.example', ',a@x.example']) {
      assert.equal(firstMailAddress(bad), null, JSON.stringify(bad));
    }
  });

  test('isUnderAny compares path segments', () => {
    assert.equal(isUnderAny('/home2/bob', ['/home2']), true);
    assert.equal(isUnderAny('/home2x/bob', ['/home2']), false);
    assert.equal(isUnderAny('/home2', ['/home2']), false);
    assert.equal(isUnderAny('/home/../etc/x', ['/home']), false);
    assert.equal(isUnderAny('/home//deep/er/', ['/home/']), true);
    assert.equal(isUnderAny('/home/..hidden', ['/home']), true);
  });

  test('parseOptionFile follows the MySQL rules for quotes, comments and escapes', () => {
    const groups = parseOptionFile([
      '[client]',
      'password = "p#ss"',
      'user=abc#def',
      "host = 'a b'   # c",
      'socket="/x\\sy"',
      'default_character_set = utf8mb4',
      'skip-ssl',
      '; semicolon comment',
      '!includedir /etc/mysql/conf.d/',
      '[Client]',
      'port=3306',
    ].join('\n'), 'test.cnf');
    const client = groups.get('client')!;
    assert.equal(client.get('password'), 'p#ss');
    assert.equal(client.get('user'), 'abc');
    assert.equal(client.get('host'), 'a b');
    assert.equal(client.get('socket'), '/x y');
    assert.equal(client.get('default-character-set'), 'utf8mb4');
    assert.equal(client.get('skip-ssl'), '');
    assert.equal(client.get('port'), '3306');
  });

  test('parseKeyValue: first separator, trimmed, comments and junk lines skipped, last wins', () => {
    const kv = parseKeyValue('# comment\nA=1\nB = x=y \nno separator here\nA=2\n');
    assert.deepEqual([...kv], [['A', '2'], ['B', 'x=y']]);
    assert.deepEqual([...parseKeyValue('bob: res1\nres1:res1\n', ':')], [['bob', 'res1'], ['res1', 'res1']]);
  });

  test('parsePasswd keeps the first of duplicate entries and names the file on errors', () => {
    const map = parsePasswd('a:x:1000:1000::/home/a:/bin/sh\na:x:2000:2000::/home/other:/bin/sh\n', '/p');
    assert.equal(map.get('a')?.uid, 1000);
    assert.throws(() => parsePasswd('a:x:1000:gid::/home/a:/bin/sh\n', '/some/passwd'), /^Error: \/some\/passwd:1: .*gid 'gid'/);
  });
});
