import streamlit as st

st.title("structure")
st.write(st.query_params.to_dict())
