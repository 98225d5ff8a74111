/* Internals of the SNS wire protocol (sns_*.c), shared between the
 * decoder, the XML renderer and the tests; the topic engine uses
 * sns_proto.h only.
 *
 * The SNS API model (the shapes of the parameters and results of the
 * actions served, as in the 2010-03-31 service model the AWS SDKs ship) is
 * a static table of sns_shape nodes: one description drives the query
 * decoder (lists from Name.member.N, maps from Name.entry.N.key/value) and
 * the XML renderer (element names and order), so both agree by
 * construction. */
#ifndef FG_BROKER_SNS_INT_H
#define FG_BROKER_SNS_INT_H

#include "broker/sns/sns_proto.h"

enum sns_kind {
    SNS_K_STR,    /* JSON string */
    SNS_K_BOOL,   /* JSON true/false ("true"/"false" in query and XML) */
    SNS_K_BLOB,   /* base64 text in JSON, query and XML */
    SNS_K_STRUCT, /* object with the listed members */
    SNS_K_LIST,   /* array of elem: Name.member.N in query, <member> in XML */
    SNS_K_MAP,    /* object of string -> elem: Name.entry.N.<key_name>/<val_name> */
};

struct sns_member;

struct sns_shape {
    enum sns_kind kind;
    const struct sns_member *members; /* SNS_K_STRUCT */
    unsigned nmembers;
    const struct sns_shape *elem;     /* list element / map value */
    const char *key_name;             /* map: "key" or "Name" */
    const char *val_name;             /* map: "value" or "Value" */
};

struct sns_member {
    const char *name;
    const struct sns_shape *shape;
    bool required;     /* ValidationError when absent from a request */
};

struct sns_action {
    const char *name;
    const struct sns_shape *in;  /* request parameters (a struct) */
    const struct sns_shape *out; /* result (a struct); NULL when the action has none */
};

/* Limits on hostile input. */
#define SNS_MAX_PARAMS 2048     /* query parameters per request */
#define SNS_MAX_KEY 256         /* bytes of one parameter name */
#define SNS_MAX_INDEX 1000      /* N in Name.member.N */

/* The action named name (case-sensitive, as AWS matches), or NULL. */
const struct sns_action *sns__action(const char *name, size_t len);
/* The member of a struct shape by name, or NULL (index in *idx). */
const struct sns_member *sns__member(const struct sns_shape *s, const char *name, size_t len,
                                     unsigned *idx);

#endif
