/**
 * The `--help` texts of `kite`, `kite pub` and `kite sub`.
 *
 * @module
 */

const COMMON_HELP = `Connection:
  -L, --url URL              the broker as a URL: mqtt(s)://[user[:pass]@]host[:port]/topic
                             (the path is the topic), or ws(s)://[user[:pass]@]host[:port]/path
                             (MQTT over WebSocket; topics with -t). Default ports
                             1883, 8883, 80, 443
  -h, --host HOST            broker host (default 127.0.0.1)
  -p, --port PORT            broker port (default 1883, 8883 with --tls)
  -i, --id ID                client id (default a random kite-... id)
  -u, --username USER        user name
  -P, --pw PASSWORD          password
  -k, --keepalive SECONDS    keep alive (default 60)
  -V, --protocol-version V   5 (default), 311; also mqttv5, mqttv311
  -c, --disable-clean-session  resume the session (needs -i)
  -x, --session-expiry-interval SECONDS  v5 session expiry
      --tls                  connect with TLS
      --cafile FILE          trust this PEM CA certificate (implies --tls)
      --cert FILE            client certificate (PEM) for mutual TLS, with --key
      --key FILE             the client certificate's private key (PEM)
      --insecure             do not check that the server certificate names the
                             host (the CA is still checked; tests only)
      --will-topic TOPIC     will message topic
      --will-payload TEXT    will message payload
      --will-qos QOS         will message QoS (default 0)
      --will-retain          retain the will message
  -D, --property CMD NAME VALUE  v5 property of a packet, CMD one of connect,
                             publish, subscribe, will, disconnect; NAME e.g.
                             user-property (two values: key and value),
                             content-type, response-topic, correlation-data,
                             message-expiry-interval, payload-format-indicator,
                             session-expiry-interval, subscription-identifier,
                             will-delay-interval
      --user-property K=V    v5 user property of the PUBLISH (pub) or
                             SUBSCRIBE (sub); may be repeated
  -q, --qos QOS              0, 1 or 2 (default 0)
  -d, --debug                print connection events to stderr
      --help                 this help`;

const PUB_HELP = `kite pub: publish one message (or one per line) and exit.

Usage: kite pub -t TOPIC (-m MSG | -f FILE | -s | -l | -n) [options]

Message:
  -t, --topic TOPIC          topic to publish to
  -m, --message MSG          the payload
  -f, --file FILE            the payload is this file's content
  -s, --stdin-file           the payload is all of stdin
  -l, --stdin-line           one message per line of stdin (blank lines skipped)
  -n, --null-message         an empty payload
  -r, --retain               retain the message
      --repeat N             publish the message N times

${COMMON_HELP}`;

const SUB_HELP = `kite sub: subscribe and print the messages received.

Usage: kite sub -t FILTER [-t FILTER...] [options]

Output:
  -t, --topic FILTER         topic filter to subscribe to (repeatable)
  -v, --verbose              print "topic payload"
  -C, --count N              exit after N messages
  -W, --timeout SECONDS      exit with status 27 if not done within SECONDS
  -F, --format FORMAT        print each message with FORMAT:
                               %t topic  %p payload  %q QoS  %r retain (0/1)
                               %i this client's id  %m message number
                               %l payload length  %x hex payload  %X HEX
                               %C content type  %R response topic
                               %D correlation data (hex)  %E expiry interval
                               %F payload format  %P user properties (k:v,...)
                               %S subscription ids  %U unix time  %I ISO time
                               %j the message as JSON  %% a percent sign
                             and the escapes \\n \\t \\\\
      --json                 print each message as one JSON object per line
  -R, --no-retained          do not print retained messages
      --retained-only        print retained messages, exit at the first live one
  -N, --no-eol               no newline after each message

${COMMON_HELP}`;

const HELP = `kite: MQTT command-line tools.

Usage:
  kite pub [options]   publish (kite pub --help)
  kite sub [options]   subscribe and print (kite sub --help)`;

/** The help text for `kite <command> --help` (`kite --help` otherwise). */
export function helpText(command: string | undefined): string {
  return command === "pub" ? PUB_HELP : command === "sub" ? SUB_HELP : HELP;
}
